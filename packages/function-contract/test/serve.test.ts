import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, waitUntil } from '@platform/test-services';
import { INSTANCE_HEADER, type FunctionResponse, type Invocation } from '../src/index.js';

// The same contract, the same tests, for each language's kit: the echo function written in each.
const kits = [
  { language: 'Node', command: process.execPath, echo: join(import.meta.dirname, 'fixtures', 'echo.mjs') },
  { language: 'Python', command: 'python3', echo: join(import.meta.dirname, 'fixtures', 'echo.py') },
];
const request = (query: Record<string, string> = {}): Invocation => ({
  callId: 'call-1',
  request: { method: 'POST', path: '/x', query, headers: { 'content-type': 'text/plain' }, body: 'hi' },
});

describe.each(kits)('the $language kit', ({ command, echo }) => {
  function oneShot(input: string, env: Record<string, string> = {}) {
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(command, [echo], { env: { ...process.env, FN_NAME: 'echo', ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('exit', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(input);
    });
  }

  describe('one-shot mode', () => {
    it('reads one invocation from stdin and writes its response to stdout', async () => {
      const result = await oneShot(JSON.stringify(request()), {
        FN_ENV: 'GREETING',
        GREETING: 'hello',
        FN_SECRETS: 'api-key',
        API_KEY: 's3cret',
        FN_INSTANCE: 'p1',
      });
      expect(result.code).toBe(0);
      const response = JSON.parse(result.stdout) as FunctionResponse;
      expect(response.status).toBe(200);
      expect(JSON.parse(response.body!)).toMatchObject({
        request: request().request,
        callId: 'call-1',
        instance: 'p1',
        env: { GREETING: 'hello' },
      });
    });

    it('without stdin (a Swarm job), fetches the invocation from FN_INVOCATION_URL and posts the response back', async () => {
      const { createServer } = await import('node:http');
      const posted: string[] = [];
      const seen: string[] = [];
      const server = createServer((req, res) => {
        seen.push(`${req.method} ${req.url}`);
        if (req.method === 'GET') return void res.end(JSON.stringify(request()));
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => {
          posted.push(body);
          res.writeHead(204).end();
        });
      });
      const port = await freePort();
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      try {
        const result = await oneShot('', { FN_INVOCATION_URL: `http://127.0.0.1:${port}/invocations/abc` });
        expect(result.code).toBe(0);
        expect(result.stdout).toBe('');
        expect(seen).toEqual(['GET /invocations/abc', 'POST /invocations/abc']);
        const response = JSON.parse(posted[0]!) as FunctionResponse;
        expect(response.status).toBe(200);
        expect(JSON.parse(response.body!)).toMatchObject({ request: request().request, callId: 'call-1' });
      } finally {
        server.close();
      }
    });

    it('reads a declared secret from the environment', async () => {
      const result = await oneShot(JSON.stringify(request({ secret: 'api-key' })), { FN_SECRETS: 'api-key', API_KEY: 's3cret' });
      expect(JSON.parse(JSON.parse(result.stdout).body).secret).toBe('s3cret');
    });

    it('turns a thrown error into a 500 JSON response without leaking it', async () => {
      const result = await oneShot(JSON.stringify(request({ fail: '' })));
      expect(result.code).toBe(0);
      const response = JSON.parse(result.stdout) as FunctionResponse;
      expect(response.status).toBe(500);
      expect(response.body).not.toContain('asked to fail');
      expect(result.stderr).toContain('asked to fail');
      // The call's log lines name it.
      expect(JSON.parse(result.stderr.split('\n').find((line) => line.includes('handler failed'))!)).toMatchObject({ callId: 'call-1', msg: 'handler failed' });
    });

    it('refuses an undeclared secret', async () => {
      const result = await oneShot(JSON.stringify(request({ secret: 'other' })), { OTHER: 'x' });
      expect(JSON.parse(result.stdout).status).toBe(500);
      expect(result.stderr).toContain('secret \\"other\\" is not declared');
    });

    it('exits 2 with a message on a malformed invocation', async () => {
      const result = await oneShot('{"callId": 1}');
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('bad invocation on stdin');
    });
  });

  describe('warm mode', () => {
    let child: ChildProcess | undefined;
    afterEach(() => {
      child?.kill('SIGKILL');
    });

    async function startWarm(env: Record<string, string> = {}) {
      const port = await freePort();
      child = spawn(command, [echo], {
        env: { ...process.env, FN_NAME: 'echo', FN_MODE: 'warm', PORT: String(port), FN_HOST: '127.0.0.1', ...env },
        stdio: ['pipe', 'inherit', 'inherit'],
      });
      const base = `http://127.0.0.1:${port}`;
      await waitUntil(async () => (await fetch(`${base}/_/health`)).ok, { what: 'warm instance health' });
      return base;
    }
    const invoke = (base: string, invocation: Invocation) => fetch(`${base}/_/invoke`, { method: 'POST', body: JSON.stringify(invocation) });

    // Break it catches: a logger that retries a failed write to stderr at exit forever (sonic-boom's
    // flushSync on EPIPE), leaving an instance running after its platform died.
    it('exits when stopped although its platform, which read its stderr, is gone', async () => {
      const port = await freePort();
      const warm = spawn(command, [echo], {
        env: { ...process.env, FN_NAME: 'echo', FN_MODE: 'warm', PORT: String(port), FN_HOST: '127.0.0.1', ECHO_TEARDOWN_LOGS: '50' },
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      child = warm;
      const exited = new Promise<number | null>((resolve) => warm.once('exit', (code) => resolve(code)));
      await waitUntil(async () => (await fetch(`http://127.0.0.1:${port}/_/health`)).ok, { what: 'warm instance health' });
      // The platform dies: nothing reads the instance's stderr any more, so its log writes fail (EPIPE).
      warm.stderr!.destroy();
      // Stopping, it logs a burst of lines just before it exits: they meet the broken pipe at exit.
      warm.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 5_000))]);
      expect(code).not.toBe('hung');
    });

    it('serves many calls from one process', async () => {
      const base = await startWarm({ FN_INSTANCE: 'w1' });
      const responses = await Promise.all([1, 2, 3].map((n) => invoke(base, { ...request(), callId: `c${n}` })));
      const bodies = await Promise.all(responses.map(async (r) => JSON.parse(((await r.json()) as FunctionResponse).body!)));
      expect(bodies.map((b) => b.callId)).toEqual(['c1', 'c2', 'c3']);
      expect(new Set(bodies.map((b) => b.instance))).toEqual(new Set(['w1']));
    });

    // Break it catches: an instance that serves a call meant for another (the header ignored).
    it('refuses with 421 a call meant for another instance, and runs nothing', async () => {
      const base = await startWarm({ FN_INSTANCE: 'w2' });
      const call = (instance: string) =>
        fetch(`${base}/_/invoke`, {
          method: 'POST',
          headers: { [INSTANCE_HEADER]: instance },
          body: JSON.stringify({ ...request(), callId: `for-${instance}` }),
        });
      const misdirected = await call('w1');
      expect(misdirected.status).toBe(421);
      expect(((await misdirected.json()) as { error: string }).error).toBe('this address serves instance w2 of echo, not w1');
      const meant = await call('w2');
      expect(meant.status).toBe(200);
      // The first call this process ran: the one meant for another instance ran nowhere.
      expect(JSON.parse(((await meant.json()) as FunctionResponse).body!)).toMatchObject({ callId: 'for-w2', instance: 'w2', served: 1 });
    });

    // Break it catches: a listen backlog of a few connections (Python's servers queue 5), so a
    // burst of calls on a fresh instance gets EAGAIN on its unix socket or a reset.
    it('takes a burst of 100 connections at once on its unix socket', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'fn-burst-'));
      try {
        const socket = join(dir, 'echo.sock');
        child = spawn(command, [echo], { env: { ...process.env, FN_NAME: 'echo', FN_MODE: 'warm', FN_SOCKET: socket }, stdio: ['pipe', 'inherit', 'inherit'] });
        const call = (path: string, method: string, body?: string) =>
          new Promise<number>((resolve, reject) => {
            const req = httpRequest({ socketPath: socket, path, method, agent: false }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            });
            req.on('error', reject);
            req.end(body);
          });
        await waitUntil(
          () =>
            call('/_/health', 'GET').then(
              (s) => s === 200,
              () => false,
            ),
          { what: 'warm instance health' },
        );
        const statuses = await Promise.all(Array.from({ length: 100 }, (_, n) => call('/_/invoke', 'POST', JSON.stringify({ ...request(), callId: `b${n}` }))));
        expect(statuses.filter((s) => s !== 200)).toEqual([]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('answers 429 beyond its in-flight limit', async () => {
      const base = await startWarm({ FN_MAX_INFLIGHT: '1' });
      const slow = invoke(base, request({ sleep: '300' }));
      await new Promise((r) => setTimeout(r, 50));
      const busy = await invoke(base, request());
      expect(busy.status).toBe(429);
      expect((await slow).status).toBe(200);
    });

    it('rejects a malformed invocation with 400', async () => {
      const base = await startWarm();
      const response = await fetch(`${base}/_/invoke`, { method: 'POST', body: 'nope' });
      expect(response.status).toBe(400);
    });

    it('drains in-flight calls on SIGTERM, then exits 0', async () => {
      const base = await startWarm();
      const slow = invoke(base, request({ sleep: '300' }));
      await new Promise((r) => setTimeout(r, 50));
      const exited = new Promise<number | null>((resolve) => child!.once('exit', resolve));
      child!.kill('SIGTERM');
      expect((await slow).status).toBe(200);
      expect(await exited).toBe(0);
    });

    it('exits when the platform that started it goes away', async () => {
      await startWarm({ FN_EXIT_WITH_PARENT: '1' });
      const exited = new Promise<number | null>((resolve) => child!.once('exit', resolve));
      child!.stdin!.end();
      expect(await exited).toBe(0);
    });
  });
});
