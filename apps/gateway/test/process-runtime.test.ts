import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '@platform/test-services';
import { fixtureFunctions, startTestGateway, type TestGateway, alive } from './harness.js';

describe('process runtime through the gateway', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ functionsDir: fixtureFunctions });
  });
  afterAll(async () => t.close());

  const status = async (name: string) => {
    const list = (await (await fetch(`${t.url}/system/functions`)).json()) as Array<{ name: string; replicas: number; instances: string[] }>;
    return list.find((f) => f.name === name)!;
  };

  it('scales a warm function from zero on the first call and back to zero when idle', async () => {
    expect((await status('sleepy')).replicas).toBe(0);
    const first = await fetch(`${t.url}/function/sleepy/some/path?x=1`, { method: 'POST', body: 'hello' });
    expect(first.status).toBe(200);
    const body = (await first.json()) as { instance: string; pid: number; path: string; body: string };
    expect(body).toMatchObject({ path: '/some/path', body: 'hello' });
    expect((await status('sleepy')).instances).toEqual([body.instance]);
    // The same instance serves the next call: it stayed warm.
    const second = (await (await fetch(`${t.url}/function/sleepy`)).json()) as { pid: number };
    expect(second.pid).toBe(body.pid);
    await waitUntil(async () => (await status('sleepy')).replicas === 0, { timeoutMs: 5_000, what: 'scale to zero' });
    await waitUntil(() => !alive(body.pid), { timeoutMs: 2_000, what: 'idle process to exit' });
  });

  it('adds instances under load up to the limit', async () => {
    const calls = await Promise.all([1, 2].map(() => fetch(`${t.url}/function/sleepy?sleep=300`)));
    const pids = await Promise.all(calls.map(async (r) => ((await r.json()) as { pid: number }).pid));
    expect(new Set(pids).size).toBe(2);
  });

  it('lets excess calls wait in a bounded line, then answers 429', async () => {
    // maxConcurrency 2 + maxQueued 2: the fifth and sixth concurrent calls are refused.
    const calls = await Promise.all(Array.from({ length: 6 }, () => fetch(`${t.url}/function/sleepy?sleep=200`)));
    const statuses = calls.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    const refused = calls.find((r) => r.status === 429)!;
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { error: string }).error).toMatch(/sleepy is busy/);
  });

  it('answers 504 for a call past its timeout and kills the stuck instance', async () => {
    const warm = (await (await fetch(`${t.url}/function/sleepy`)).json()) as { pid: number };
    const started = Date.now();
    const late = await fetch(`${t.url}/function/sleepy?sleep=5000`);
    expect(late.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(((await late.json()) as { error: string }).error).toBe('function sleepy did not answer within 1 s');
    await waitUntil(() => !alive(warm.pid), { timeoutMs: 3_000, what: 'stuck instance to be killed' });
  });

  it('runs a one-shot function in a new process per call, killed at its timeout', async () => {
    const [a, b] = await Promise.all([1, 2].map(async () => (await (await fetch(`${t.url}/function/once`)).json()) as { pid: number; env: object }));
    expect(a!.pid).not.toBe(b!.pid);
    expect(a!.env).toEqual({ GREETING: 'hello' });
    expect(alive(a!.pid)).toBe(false);
    const late = await fetch(`${t.url}/function/once?sleep=5000`);
    expect(late.status).toBe(504);
    expect((await status('once')).replicas).toBe(0);
  });

  it('answers 502 when an instance dies mid-call and starts a fresh one next time', async () => {
    const before = (await (await fetch(`${t.url}/function/crashy`)).json()) as { pid: number };
    const crash = await fetch(`${t.url}/function/crashy?exit`);
    expect(crash.status).toBe(502);
    const after = (await (await fetch(`${t.url}/function/crashy`)).json()) as { pid: number };
    expect(after.pid).not.toBe(before.pid);
  });

  it('passes a function only the environment its manifest declares', async () => {
    process.env.GATEWAY_ONLY_SECRET = 'must-not-leak';
    const body = (await (await fetch(`${t.url}/function/once`)).json()) as { env: Record<string, string>; processEnv: string[] };
    expect(Object.keys(body.env)).toEqual(['GREETING']);
    // Beside the manifest's variables, only the platform's own: PATH, the log level, FN_*.
    expect(body.processEnv.filter((k) => !k.startsWith('FN_'))).toEqual(['GREETING', 'LOG_LEVEL', 'PATH']);
    expect(body.processEnv).not.toContain('GATEWAY_ONLY_SECRET');
  });
});
