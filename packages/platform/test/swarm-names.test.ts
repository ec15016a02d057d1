import { describe, expect, it } from 'vitest';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import { boundedName, jobServiceSpec, serviceName, SWARM_NAME_MAX, warmServiceSpec } from '../src/runtimes/swarm/spec.js';
import { secretName } from '../src/runtimes/swarm/secrets.js';

const context = { prefix: 'shop-fn', network: 'fn-net', options: { env: {}, secret: () => 'v' } };
const deployed = { image: 'sha256:aaa', secrets: [] };
const fnNamed = (name: string) => ({ name, memoryMb: 64, timeoutSeconds: 5, maxConcurrency: 2, env: {}, secrets: [] }) as unknown as FunctionSpec;

describe('Swarm names', () => {
  const common = `f${'x'.repeat(78)}`;
  const [a, b] = [`${common}a`, `${common}b`];

  // Break it catches: names cut at 63 characters (the end, where the names differ, or the value's
  // hash, cut off: two functions sharing one secret, two services taking one name).
  it('of two long functions differing at the end are distinct and at most 63 characters', () => {
    expect(a).toHaveLength(80);
    const names = (name: string) => [
      serviceName(context.prefix, name),
      warmServiceSpec(context, fnNamed(name), deployed, 'token').Name,
      jobServiceSpec(context, fnNamed(name), deployed, { token: 'job-token-0123456789', invocationUrl: 'http://127.0.0.1:1/x', controller: 'c' }).Name,
      secretName(context.prefix, name, 'database-url', 'postgres://one'),
    ];
    const [ofA, ofB] = [names(a), names(b)];
    for (const name of [...ofA, ...ofB]) expect(name.length).toBeLessThanOrEqual(SWARM_NAME_MAX);
    for (let i = 0; i < ofA.length; i++) expect(ofA[i]).not.toBe(ofB[i]);
    expect(new Set([...ofA, ...ofB]).size).toBe(8);
  });

  it('keep what tells apart a long name’s jobs and its secret’s values', () => {
    const job = (token: string) => jobServiceSpec(context, fnNamed(a), deployed, { token, invocationUrl: 'http://127.0.0.1:1/x', controller: 'c' }).Name;
    expect(job('aaaaaaaaaaaa-1')).not.toBe(job('bbbbbbbbbbbb-1'));
    expect(secretName(context.prefix, a, 'database-url', 'one')).not.toBe(secretName(context.prefix, a, 'database-url', 'two'));
  });

  it('stay as they were when they fit', () => {
    expect(serviceName('shop-fn', 'vote')).toBe('shop-fn-vote');
    expect(boundedName('x'.repeat(63))).toBe('x'.repeat(63));
    expect(boundedName('x'.repeat(64))).toMatch(/^x{52}-[0-9a-f]{10}$/);
    expect(secretName('shop-fn', 'vote', 'cookie-secret', 'v')).toMatch(/^shop-fn-vote-cookie-secret-[0-9a-f]{10}$/);
  });
});
