import { describe, expect, it } from 'vitest';
import { requirePasswordsIn } from '../src/auth.js';

describe('requirePasswordsIn', () => {
  // Break it catches: a rule's method left as it was (trust lets anyone in by naming a user).
  it('asks for the password (scram-sha-256) in every rule that took a login without it or in the clear', () => {
    const before = [
      '# TYPE  DATABASE        USER            ADDRESS                 METHOD',
      'local   all             all                                     trust',
      'host    all             all             127.0.0.1/32            password',
      'host    all             all             ::1/128                 md5',
      'host    all             all             127.0.0.1 255.255.255.255 trust',
      'hostssl all             all             samenet                 trust  # the bridge',
      'host    all             all             all                     scram-sha-256',
      'local   replication     all                                     peer map=ops',
      '',
    ].join('\n');
    expect(requirePasswordsIn(before)).toBe(
      [
        '# TYPE  DATABASE        USER            ADDRESS                 METHOD',
        'local   all             all                                     scram-sha-256',
        'host    all             all             127.0.0.1/32            scram-sha-256',
        'host    all             all             ::1/128                 scram-sha-256',
        'host    all             all             127.0.0.1 255.255.255.255 scram-sha-256',
        'hostssl all             all             samenet                 scram-sha-256  # the bridge',
        'host    all             all             all                     scram-sha-256',
        'local   replication     all                                     peer map=ops',
        '',
      ].join('\n'),
    );
  });

  it('leaves a file that already asks for passwords as it is, comments included', () => {
    const strict = '# trust nobody\nlocal all all scram-sha-256\nhost all trust 127.0.0.1/32 scram-sha-256\n';
    expect(requirePasswordsIn(strict)).toBe(strict);
  });
});
