import { execFile } from 'node:child_process';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitUntil } from '@platform/test-services';
import { fixtureFunctions, startTestGateway, type TestGateway } from './harness.js';

const cli = join(import.meta.dirname, '..', '..', '..', 'packages', 'cli', 'dist', 'main.js');
const token = 'cli-test-token';

describe('the fn command line against a running gateway', () => {
  let t: TestGateway;
  let dir: string;
  beforeAll(async () => {
    t = await startTestGateway({ functionsDir: fixtureFunctions, options: { auth: { token } } });
    dir = await mkdtemp(join(tmpdir(), 'fn-cli-'));
  });
  afterAll(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs `fn ...args` with GATEWAY_URL pointing at the test gateway. */
  const fn = (args: string[], env: Record<string, string> = {}) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [cli, ...args],
        { env: { PATH: process.env.PATH, GATEWAY_URL: t.url, GATEWAY_ADMIN_TOKEN_FILE: join(dir, 'no-token'), ...env } },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
    });

  it('lists the functions, as a table or as JSON', async () => {
    const table = await fn(['list']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^NAME\s+MODE\s+REPLICAS\s+INVOCATIONS\s+COLD STARTS\n/);
    expect(table.stdout).toMatch(/^sleepy\s+warm\s+0\/2\s+0\s+0$/m);
    const json = await fn(['--json', 'list']);
    expect((JSON.parse(json.stdout) as Array<{ name: string }>).map((f) => f.name)).toEqual(['crashy', 'once', 'sleepy']);
  });

  it('invokes a function with data from a string or a file, and exits 1 when the call fails', async () => {
    // With the admin token at hand, as next to npm start. Break it catches: fn sending the token
    // with every call, so that functions (and queued calls) see it.
    const sync = await fn(['invoke', 'sleepy/some/path', '--data', '{"a":1}'], { GATEWAY_ADMIN_TOKEN: token });
    expect(sync.code).toBe(0);
    expect(JSON.parse(sync.stdout)).toMatchObject({ path: '/some/path', body: '{"a":1}' });
    expect((JSON.parse(sync.stdout) as { headers: string[] }).headers).not.toContain('authorization');
    await writeFile(join(dir, 'body.txt'), 'from a file');
    const file = await fn(['invoke', 'sleepy', '--data', `@${join(dir, 'body.txt')}`, '--json']);
    const answer = JSON.parse(file.stdout) as { status: number; callId: string; body: string };
    expect(answer).toMatchObject({ status: 200, callId: expect.any(String) });
    expect(JSON.parse(answer.body)).toMatchObject({ body: 'from a file' });

    const failed = await fn(['invoke', 'crashy?exit']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/answered 502/);
    const unknown = await fn(['invoke', 'nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/answered 404: .*not found/);
  });

  it('queues a call with --async and shows its status and result with `fn calls`', async () => {
    const queued = await fn(['invoke', 'sleepy', '--async', '--data', 'later']);
    expect(queued.code).toBe(0);
    const callId = queued.stdout.trim();
    expect(callId).toMatch(/^[0-9a-f-]{36}$/);
    let shown = '';
    await waitUntil(
      async () => {
        shown = (await fn(['calls', callId])).stdout;
        return shown.includes('succeeded');
      },
      { timeoutMs: 10_000, what: 'the call to succeed' },
    );
    expect(shown).toMatch(new RegExp(`^${callId}  sleepy  succeeded  \\(attempts: 1\\)\\n200 \\{`));
    const json = JSON.parse((await fn(['calls', callId, '--json'])).stdout) as { status: string; result: { status: number } };
    expect(json).toMatchObject({ status: 'succeeded', result: { status: 200 } });
    const unknown = await fn(['calls', 'no-such-call']);
    expect(unknown.code).toBe(1);
  });

  it('scales with the admin token, and is refused without it', async () => {
    const refused = await fn(['scale', 'sleepy', '1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/401: credentials required/);
    const up = await fn(['scale', 'sleepy', '1', '--token', token]);
    expect(up).toMatchObject({ code: 0, stdout: 'sleepy: 1 instance\n' });
    const down = await fn(['--json', 'scale', 'sleepy', '0'], { GATEWAY_ADMIN_TOKEN: token });
    expect(JSON.parse(down.stdout)).toEqual({ serviceName: 'sleepy', replicas: 0 });
    const tooMany = await fn(['scale', 'sleepy', '9', '--token', token]);
    expect(tooMany.code).toBe(1);
    expect(tooMany.stderr).toMatch(/400: replicas must be an integer from 0 to 2/);
  });

  it("shows a function's last log lines, as text or JSON, to the admin", async () => {
    await fetch(`${t.url}/function/sleepy?log=cli-mark`);
    const admin = { GATEWAY_ADMIN_TOKEN: token };
    await waitUntil(async () => (await fn(['logs', 'sleepy'], admin)).stdout.includes('cli-mark'), { what: 'the line in fn logs' });
    const text = await fn(['logs', 'sleepy', '--tail', '3'], admin);
    expect(text.code).toBe(0);
    expect(text.stdout.trim().split('\n').length).toBeLessThanOrEqual(3);
    expect(text.stdout).toMatch(/^\d{4}-\d\d-\d\dT\S+ {2}sleepy-\w+ {2}/m);
    const json = JSON.parse((await fn(['--json', 'logs', 'sleepy'], admin)).stdout) as Array<{ name: string; text: string }>;
    expect(json.some((line) => line.name === 'sleepy' && line.text.includes('cli-mark'))).toBe(true);
    expect((await fn(['logs', 'nope'], admin)).code).toBe(1);
    expect((await fn(['logs', 'sleepy', '--tail', '0'], admin)).code).toBe(2);
    const anonymous = await fn(['logs', 'sleepy']);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/^fn: 401: credentials required: .*--token/m);
    // Next to a local gateway it reads the token npm start generated.
    await writeFile(join(dir, 'token'), `${token}\n`);
    expect((await fn(['logs', 'sleepy'], { GATEWAY_ADMIN_TOKEN_FILE: join(dir, 'token') })).code).toBe(0);
  });

  it('exits 2 on usage errors', async () => {
    expect((await fn(['scale', 'sleepy', 'two'])).code).toBe(2);
    expect((await fn(['frobnicate'])).code).toBe(2);
    expect((await fn(['invoke'])).code).toBe(2);
    expect((await fn(['invoke', 'sleepy', '--method', 'GET', '--data', 'x'])).code).toBe(2);
    expect((await fn(['--help'])).code).toBe(0);
  });

  it('exits 1 when the gateway cannot be reached', async () => {
    const down = await fn(['list'], { GATEWAY_URL: `http://127.0.0.1:${await freePort()}` });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/could not reach the gateway/);
  });
});
