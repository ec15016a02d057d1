import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, startPrivatePostgres, type RestartablePostgres } from '@platform/test-services';
import pg from 'pg';
import { sharedSecret } from '@platform/core/secrets';
import { migratePlatform } from '@platform/core/store/migrate';
import { childGateway, report, sleep, type ChildGateway } from './faults.js';

// The app run with known secret values, logging at debug level, through votes, bad input, wrong
// credentials, an admin call and a database outage, then stopped: no secret value appears in
// anything it printed (its own and its functions' logs) or answered.
let postgres: RestartablePostgres | undefined;
let app: ChildGateway | undefined;
afterAll(async () => {
  await app?.close();
  await postgres?.stop();
});

// Break it catches: the gateway logging DATABASE_URL unredacted, password included, when it connects to PostgreSQL.
it('keeps secrets out of logs, answers and error messages', { timeout: 60_000 }, async () => {
  postgres = await startPrivatePostgres();
  const secrets = {
    'database password': new URL(postgres.url).password,
    'cookie key': `cookie-${randomBytes(12).toString('hex')}`,
    'admin token': `admin-${randomBytes(12).toString('hex')}`,
    'invoke token': `invoke-${randomBytes(12).toString('hex')}`,
  };
  app = await childGateway({
    DATABASE_URL: postgres.url,
    COOKIE_SECRET: secrets['cookie key'],
    GATEWAY_ADMIN_TOKEN: secrets['admin token'],
    GATEWAY_INVOKE_TOKEN: secrets['invoke token'],
    LOG_LEVEL: 'debug',
  });
  await app.start();
  const answers: string[] = [];
  const call = async (path: string, init: RequestInit = {}) => {
    const response = await fetch(`${app!.url}${path}`, { redirect: 'manual', ...init });
    answers.push(`${response.status} ${JSON.stringify([...response.headers])} ${await response.text()}`);
    return response;
  };
  const json = { 'content-type': 'application/json' };
  const first = await call('/function/vote', { method: 'POST', headers: json, body: '{"vote":"a"}' });
  const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
  await call('/function/vote', { method: 'POST', headers: { ...json, cookie }, body: '{"vote":"b"}' });
  await call('/function/vote', { method: 'POST', headers: { ...json, cookie: `voter_id=${'0'.repeat(32)}.${'x'.repeat(22)}` }, body: '{"vote":"a"}' });
  await call('/function/vote', { method: 'POST', headers: json, body: '{"vote":' });
  await call('/', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'vote=b' });
  await call('/function/record-vote', { method: 'POST', headers: { ...json, 'x-invoke-token': 'guess' }, body: '{}' });
  await call('/system/scale-function/vote', { method: 'POST', headers: { ...json, authorization: 'Bearer wrong' }, body: '{"replicas":1}' });
  await call('/system/scale-function/vote', {
    method: 'POST',
    headers: { ...json, authorization: `Bearer ${secrets['admin token']}` },
    body: '{"replicas":1}',
  });
  const queued = await call('/async-function/results', { method: 'POST' });
  await call(`/system/calls/${queued.headers.get('x-call-id')}`);
  await call('/system/functions');
  await call('/metrics');
  // A database outage: the errors it causes are logged and answered without the password.
  await postgres.pause();
  for (let i = 0; i < 3; i++) await call('/function/vote', { method: 'POST', headers: json, body: '{"vote":"a"}' });
  await call('/function/results');
  await sleep(1_000);
  await postgres.resume();
  await sleep(1_500);
  await call('/function/results');
  const code = await app.signal('SIGTERM');
  const output = app.output();
  const found = Object.entries(secrets).flatMap(([name, value]) =>
    [value, encodeURIComponent(value), Buffer.from(value).toString('base64')].some((form) => output.includes(form) || answers.some((a) => a.includes(form)))
      ? [name]
      : [],
  );
  report([
    'secrets kept out of logs and answers:',
    ['lines logged (gateway and functions, debug level)', output.split('\n').length],
    ['answers checked', answers.length],
    ['statuses', answers.map((a) => Number(a.slice(0, 3)))],
    ['secrets found', found],
  ]);
  expect(code).toBe(0);
  expect(output).toMatch(/database|connect|ECONNREFUSED/i); // the outage was logged at all
  expect(answers.some((a) => a.startsWith('503'))).toBe(true);
  expect(found).toEqual([]);
});

describe('secrets no one configured, the same for every gateway', () => {
  const folders: string[] = [];
  const databases: Array<{ url: string; drop(): Promise<void> }> = [];
  const apps: ChildGateway[] = [];
  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const database of databases) await database.drop();
    for (const folder of folders) await rm(folder, { recursive: true, force: true });
  });
  const database = async () => {
    const created = await createTestDatabase(process.env.DATABASE_URL!);
    databases.push(created);
    await migratePlatform(created.url);
    return created.url;
  };

  // Break it catches: each process making a value of its own, or the secret read back in the insert's own statement (its snapshot misses a concurrent insert).
  it('gives two processes asking for the same secrets at once the same values', { timeout: 60_000 }, async () => {
    const url = await database();
    const names = Array.from({ length: 20 }, (_, i) => `secret-${i}`);
    // Both processes start asking at the same moment, every name at once.
    const at = Date.now() + 1_500;
    const script = `
      import { sharedSecret } from '@platform/core/secrets';
      const [url, at, ...names] = process.argv.slice(1);
      await new Promise((r) => setTimeout(r, Number(at) - Date.now()));
      const values = await Promise.all(names.map((name) => sharedSecret(url, name)));
      process.stdout.write(JSON.stringify(values));`;
    const ask = () => promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, url, String(at), ...names], { cwd: import.meta.dirname });
    const [one, other] = (await Promise.all([ask(), ask()])).map((out) => JSON.parse(out.stdout) as string[]);
    expect(one).toHaveLength(names.length);
    expect(new Set(one).size).toBe(names.length);
    for (const value of one!) expect(value).toMatch(/^[\w-]{43}$/);
    expect(other).toEqual(one);
    // One asking while another's insert is not committed yet waits for it, and reads the value it committed.
    const first = new pg.Client({ connectionString: url });
    await first.connect();
    await first.query('BEGIN');
    await first.query(`INSERT INTO platform_secrets (name, value) VALUES ('held', 'the-first-value')`);
    const asked = sharedSecret(url, 'held');
    await sleep(300);
    await first.query('COMMIT');
    await first.end();
    expect(await asked).toBe('the-first-value');
  });

  // Break it catches: the secret file created empty and then written (a process starting meanwhile reads an empty secret, or another value).
  it('makes a local secret file whole: processes making it at the same moment all read its one value', { timeout: 60_000 }, async () => {
    const base = await mkdtemp(join(tmpdir(), 'voting-secret-'));
    folders.push(base);
    const rounds = 100;
    // Each process makes the secret of a new folder every 5 ms, all at the same moments (busy-waiting for them).
    const script = `
      import { join } from 'node:path';
      import { localSecret } from '@platform/core/secrets';
      const [base, start, rounds] = process.argv.slice(1);
      const values = [];
      for (let round = 0; round < Number(rounds); round++) {
        const at = Number(start) + round * 5;
        while (Date.now() < at) {}
        values.push(await localSecret(join(base, String(round)), 'gateway-admin-token'));
      }
      process.stdout.write(JSON.stringify(values));`;
    const start = Date.now() + 2_000;
    const make = () =>
      promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, base, String(start), String(rounds)], { cwd: import.meta.dirname });
    const made = (await Promise.all([make(), make(), make(), make()])).map((out) => JSON.parse(out.stdout) as string[]);
    const disagreeing = Array.from({ length: rounds }, (_, round) => made.map((values) => values[round]!)).filter(
      (values) => new Set(values).size !== 1 || !/^[\w-]{43}$/.test(values[0]!),
    );
    expect(disagreeing).toEqual([]);
    // Nothing left behind but the secret.
    for (let round = 0; round < rounds; round++) expect(await readdir(join(base, String(round), 'secrets'))).toEqual(['gateway-admin-token']);
  });

  // Break it catches: a cookie key or an invoke token of each gateway's own (a voter, or votes queued through the other gateway, refused).
  it('lets two gateways on one database share the cookie key and the invoke token', { timeout: 90_000 }, async () => {
    const url = await database();
    const other = await childGateway({ DATABASE_URL: url });
    // Its functions queue their calls to record-vote through the other gateway, with its invoke token.
    const one = await childGateway({ DATABASE_URL: url, FUNCTION_GATEWAY_URL: other.url });
    apps.push(one, other);
    await Promise.all([one.start(), other.start()]);
    const json = { 'content-type': 'application/json' };
    const first = await fetch(`${one.url}/function/vote`, { method: 'POST', headers: json, body: '{"vote":"a"}' });
    expect(first.status).toBe(200);
    const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
    const again = await fetch(`${other.url}/function/vote`, { method: 'POST', headers: { ...json, cookie }, body: '{"vote":"b"}' });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { voterId: string }).voterId).toBe(cookie.slice('voter_id='.length).split('.')[0]);
  });
});
