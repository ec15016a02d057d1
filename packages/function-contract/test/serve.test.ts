import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, waitUntil } from '@platform/test-services';
import { INSTANCE_HEADER, INVOKE_TOKEN_ENV, INVOKE_TOKEN_HEADER, MAX_INVOCATION_BYTES, type FunctionResponse, type Invocation } from '../src/index.js';

// The same contract, the same tests, for each language's kit: the echo function written in each.
const kits = [
  { language: 'Node', command: process.execPath, echo: join(import.meta.dirname, 'fixtures', 'echo.mjs') },
  { language: 'Python', command: 'python3', echo: join(import.meta.dirname, 'fixtures', 'echo.py') },
];
/** The credential the warm instances of these tests are given. */
const TOKEN = 'test-credential-0123456789';
const request = (query: Record<string, string> = {}): Invocation => ({
  callId: 'call-1',
  request: { method: 'POST', path: '/x', query, headers: { 'content-type': 'text/plain' }, body: 'hi' },
});

/**
 * Writes `parts` to a warm instance over one connection (stopping once an answer comes) and
 * resolves with what it answered before closing the connection, or fails after 5 s.
 */
function rawExchange(base: string, parts: string[]): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer in 5 s; got ${JSON.stringify(answer.slice(0, 200))}`));
    }, 5_000);
    const done = () => {
      clearTimeout(timer);
      resolve(answer);
    };
    socket.on('data', (data) => (answer += data));
    socket.on('close', done);
    socket.on('error', done);
    socket.on('connect', async () => {
      for (const part of parts) {
        if (answer || socket.destroyed) return;
        if (!socket.write(part)) await new Promise((r) => socket.once('drain', r));
      }
    });
  });
}

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
        env: { ...process.env, FN_NAME: 'echo', FN_MODE: 'warm', PORT: String(port), FN_HOST: '127.0.0.1', [INVOKE_TOKEN_ENV]: TOKEN, ...env },
        stdio: ['pipe', 'inherit', 'inherit'],
      });
      const base = `http://127.0.0.1:${port}`;
      await waitUntil(async () => (await fetch(`${base}/_/health`)).ok, { what: 'warm instance health' });
      return base;
    }
    const invoke = (base: string, invocation: Invocation, headers: Record<string, string> = { [INVOKE_TOKEN_HEADER]: TOKEN }) =>
      fetch(`${base}/_/invoke`, { method: 'POST', headers, body: JSON.stringify(invocation) });
    const served = async (response: Response) => JSON.parse(((await response.json()) as FunctionResponse).body!) as { callId: string; served: number };

    // Break it catches: a logger that retries a failed write to stderr at exit forever (sonic-boom's
    // flushSync on EPIPE), leaving an instance running after its platform died.
    it('exits when stopped although its platform, which read its stderr, is gone', async () => {
      const port = await freePort();
      const warm = spawn(command, [echo], {
        env: {
          ...process.env,
          FN_NAME: 'echo',
          FN_MODE: 'warm',
          PORT: String(port),
          FN_HOST: '127.0.0.1',
          [INVOKE_TOKEN_ENV]: TOKEN,
          ECHO_TEARDOWN_LOGS: '50',
        },
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
          headers: { [INSTANCE_HEADER]: instance, [INVOKE_TOKEN_HEADER]: TOKEN },
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
        child = spawn(command, [echo], {
          env: { ...process.env, FN_NAME: 'echo', FN_MODE: 'warm', FN_SOCKET: socket, [INVOKE_TOKEN_ENV]: TOKEN },
          stdio: ['pipe', 'inherit', 'inherit'],
        });
        const call = (path: string, method: string, body?: string) =>
          new Promise<number>((resolve, reject) => {
            const req = httpRequest({ socketPath: socket, path, method, agent: false, headers: { [INVOKE_TOKEN_HEADER]: TOKEN } }, (res) => {
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
      const response = await fetch(`${base}/_/invoke`, { method: 'POST', headers: { [INVOKE_TOKEN_HEADER]: TOKEN }, body: 'nope' });
      expect(response.status).toBe(400);
    });

    // Break it catches: an instance that runs calls without its credential (the check removed or
    // skipped), so anything on the functions' network runs the function as the platform would.
    it('runs only calls that carry its credential (401 otherwise, running nothing); its health stays open', async () => {
      const base = await startWarm();
      expect((await fetch(`${base}/_/health`)).status).toBe(200);
      for (const headers of [
        {} as Record<string, string>,
        { [INVOKE_TOKEN_HEADER]: 'wrong' },
        { [INVOKE_TOKEN_HEADER]: `${TOKEN}x` },
        { [INVOKE_TOKEN_HEADER]: TOKEN.slice(0, -1) },
        { authorization: `Bearer ${TOKEN}` },
      ]) {
        const refused = await invoke(base, { ...request(), callId: 'stranger' }, headers);
        expect(refused.status).toBe(401);
        expect(((await refused.json()) as { error: string }).error).toContain(INVOKE_TOKEN_HEADER);
      }
      const allowed = await invoke(base, { ...request(), callId: 'platform' });
      expect(allowed.status).toBe(200);
      // The first call this process ran: none of the refused ones ran.
      expect(await served(allowed)).toMatchObject({ callId: 'platform', served: 1 });
    });

    // Break it catches: a warm instance that, given no credential, serves everyone.
    it('refuses to start warm without a credential', async () => {
      const warm = spawn(command, [echo], {
        env: { ...process.env, FN_NAME: 'echo', FN_MODE: 'warm', PORT: '0', FN_HOST: '127.0.0.1' },
        stdio: ['pipe', 'ignore', 'pipe'],
      });
      child = warm;
      let stderr = '';
      warm.stderr!.on('data', (d) => (stderr += d));
      const code = await new Promise<number | null>((resolve) => warm.once('exit', resolve));
      expect(code).toBe(1);
      expect(stderr).toContain(`${INVOKE_TOKEN_ENV} is not set`);
    });

    // Break it catches: a server that believes a negative or garbled Content-Length (reading to the end of the
    // stream, or failing without an answer) and then stops serving.
    it.each(['-1', 'abc', '1, 2'])('answers 400 to Content-Length %s, and serves on', async (length) => {
      const base = await startWarm();
      const answer = await rawExchange(base, [`POST /_/invoke HTTP/1.1\r\nhost: x\r\n${INVOKE_TOKEN_HEADER}: ${TOKEN}\r\ncontent-length: ${length}\r\n\r\n{}`]);
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect((await invoke(base, request())).status).toBe(200);
    });

    // Break it catches: a server that allocates or waits for whatever length a caller declares.
    it('answers 413 at once to a Content-Length over its limit, reading none of it', async () => {
      const base = await startWarm();
      const answer = await rawExchange(base, [`POST /_/invoke HTTP/1.1\r\nhost: x\r\n${INVOKE_TOKEN_HEADER}: ${TOKEN}\r\ncontent-length: 10000000000\r\n\r\n`]);
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect((await invoke(base, request())).status).toBe(200);
    });

    // Break it catches: a server that reads a chunked body as empty (or as the chunks' framing), or keeps
    // reading one without end.
    it('reads a chunked body whole, and stops reading one over its limit with 413', async () => {
      const base = await startWarm();
      const body = JSON.stringify({ ...request(), callId: 'chunked' });
      const chunks = [body.slice(0, 10), body.slice(10, 11), body.slice(11)].map((part) => `${Buffer.byteLength(part).toString(16)}\r\n${part}\r\n`);
      const head = `POST /_/invoke HTTP/1.1\r\nhost: x\r\n${INVOKE_TOKEN_HEADER}: ${TOKEN}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n`;
      const answer = await rawExchange(base, [head, ...chunks, '0\r\n\r\n']);
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      expect(JSON.parse((JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as FunctionResponse).body!)).toMatchObject({
        callId: 'chunked',
        request: request().request,
      });

      const mib = 'x'.repeat(1024 * 1024);
      const over = Array.from({ length: MAX_INVOCATION_BYTES / mib.length + 2 }, () => `${mib.length.toString(16)}\r\n${mib}\r\n`);
      expect(await rawExchange(base, [head, ...over, '0\r\n\r\n'])).toMatch(/^HTTP\/1\.1 413 /);
      expect((await invoke(base, request())).status).toBe(200);
    });

    // Break it catches: a kept-alive connection that holds a server thread between calls (or a server that
    // stops accepting beyond a few), so calls on connections past that number are never answered.
    it('answers calls on more kept-alive connections than it has call slots', async () => {
      const base = await startWarm({ FN_MAX_INFLIGHT: '2' });
      const agent = new Agent({ keepAlive: true, maxSockets: 40 });
      try {
        const get = (path: string, method = 'GET', body?: string) =>
          new Promise<number>((resolve, reject) => {
            const req = httpRequest(`${base}${path}`, { method, agent, headers: { [INVOKE_TOKEN_HEADER]: TOKEN } }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            });
            req.on('error', reject);
            req.end(body);
          });
        // 40 connections at once, each kept open afterwards; then a call on each of them.
        expect(await Promise.all(Array.from({ length: 40 }, () => get('/_/health')))).toEqual(Array(40).fill(200));
        expect(Object.values(agent.freeSockets).flat().length).toBe(40);
        const statuses = await Promise.all(
          Array.from({ length: 40 }, (_, n) => get('/_/invoke', 'POST', JSON.stringify({ ...request({ sleep: '50' }), callId: `k${n}` }))),
        );
        expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
        expect(statuses).toContain(200);
      } finally {
        agent.destroy();
      }
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

describe("the Python kit's server", () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
  });

  // Break it catches: a thread per connection (the standard library's ThreadingHTTPServer), so every
  // connection anyone opens costs a thread, without bound.
  it('serves 60 open connections with a bounded pool of threads', async () => {
    const port = await freePort();
    const warm = spawn('python3', [kits[1]!.echo], {
      env: { ...process.env, FN_NAME: 'echo', FN_MODE: 'warm', PORT: String(port), FN_HOST: '127.0.0.1', [INVOKE_TOKEN_ENV]: TOKEN, FN_MAX_INFLIGHT: '2' },
      stdio: ['pipe', 'inherit', 'inherit'],
    });
    child = warm;
    const base = `http://127.0.0.1:${port}`;
    await waitUntil(async () => (await fetch(`${base}/_/health`)).ok, { what: 'warm instance health' });
    const agent = new Agent({ keepAlive: true, maxSockets: 60 });
    try {
      const health = () =>
        new Promise<number>((resolve, reject) => {
          const req = httpRequest(`${base}/_/health`, { agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end();
        });
      expect(await Promise.all(Array.from({ length: 60 }, health))).toEqual(Array(60).fill(200));
      expect(Object.values(agent.freeSockets).flat().length).toBe(60);
      // Its pool (FN_MAX_INFLIGHT + 4 threads) and the main thread, however many connections are open.
      expect(readdirSync(`/proc/${warm.pid}/task`).length).toBeLessThanOrEqual(2 + 4 + 1);
    } finally {
      agent.destroy();
    }
  });
});
