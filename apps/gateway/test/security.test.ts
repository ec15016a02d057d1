import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io } from 'socket.io-client';
import { fixtureFunctions, startTestGateway, TEST_INVOKE_TOKEN, type TestGateway } from './harness.js';
import { site } from '@platform/core/pages';
import { toFunctionRequest } from '@platform/core/http-function';

const json = { 'content-type': 'application/json' };

describe('private functions: record-vote only from functions', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway();
  });
  afterAll(async () => {
    await t.close();
  });

  const record = JSON.stringify({ voterId: 'ab'.repeat(16), vote: 'b', votedAt: Date.now() * 1_000 });

  // Break it catches: record-vote's manifest without "private": true, so anyone may invoke it and write votes directly.
  it.each([
    ['/function/record-vote', {}],
    ['/async-function/record-vote', {}],
    ['/function/record-vote', { 'x-invoke-token': 'guess' }],
    ['/async-function/record-vote', { 'x-invoke-token': '' }],
    ['/async-function/record-vote/', { 'x-invoke-token': `${TEST_INVOKE_TOKEN}x` }],
  ])('%s %j is a 403, nothing queued or recorded', async (path, headers) => {
    const response = await fetch(`${t.url}${path}`, { method: 'POST', headers: { ...json, ...headers }, body: record });
    expect(response.status).toBe(403);
    expect(await response.json()).toEqual({ error: 'function "record-vote" is private: only functions of this app may invoke it' });
    expect(await t.queue.depth()).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    expect((await t.db.query('SELECT count(*)::int AS n FROM votes')).rows[0].n).toBe(0);
  });

  // Break it catches: the vote function's manifest without the gateway-invoke-token secret, so its votes never reach record-vote (503).
  it('a vote still reaches record-vote through the vote function, which holds the token', async () => {
    const response = await fetch(`${t.url}/function/vote`, { method: 'POST', headers: json, body: '{"vote":"a"}' });
    expect(response.status).toBe(200);
    const { voterId } = (await response.json()) as { voterId: string };
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && (await t.db.query('SELECT 1 FROM votes WHERE id = $1', [voterId])).rowCount === 0)
      await new Promise((r) => setTimeout(r, 50));
    expect((await t.db.query('SELECT vote FROM votes WHERE id = $1', [voterId])).rows).toEqual([{ vote: 'a' }]);
  });

  // Break it catches: X-Invoke-Token passed on with the other headers to the function and into queued calls, not dropped as a gateway-only header.
  it('never passes the invoke token on to a function, nor into a queued call', () => {
    const req = { headers: { 'x-invoke-token': 'secret-value', 'content-type': 'text/plain' }, url: '/x', method: 'POST' };
    const request = toFunctionRequest(req, '/', Buffer.from(''));
    expect(request.headers).toEqual({ 'content-type': 'text/plain' });
  });
});

describe('no request chooses what runs, or with which environment', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ functionsDir: fixtureFunctions });
  });
  afterAll(async () => t.close());

  // Break it catches: a one-shot process given the request's headers as environment variables (as OpenFaaS's classic watchdog does with Http_* variables).
  it('gives a one-shot process only its manifest environment, whatever the request says', async () => {
    const plain = (await (await fetch(`${t.url}/function/once`)).json()) as { env: Record<string, string>; processEnv: string[] };
    const hostile = await fetch(`${t.url}/function/once/..%2F..%2Fbin%2Fsh?image=alpine&cmd=sh&env=EVIL%3D1&FN_MODE=warm&NODE_OPTIONS=--inspect`, {
      method: 'POST',
      headers: { ...json, 'x-env': 'EVIL=1', 'x-image': 'alpine', 'x-cmd': 'sh', 'node-options': '--inspect', 'x-fn-mode': 'warm' },
      body: JSON.stringify({ image: 'alpine', cmd: ['sh', '-c', 'id'], mounts: ['/:/host'], network: 'host', env: { EVIL: '1', NODE_OPTIONS: '--inspect' } }),
    });
    expect(hostile.status).toBe(200);
    const got = (await hostile.json()) as { env: Record<string, string>; processEnv: string[]; path: string };
    expect(got.processEnv).toEqual(plain.processEnv);
    expect(got.env).toEqual(plain.env);
    expect(got.processEnv).not.toContain('EVIL');
    expect(got.processEnv).not.toContain('NODE_OPTIONS');
    // The path is only data for the function, passed on as it came.
    expect(got.path).toBe('/..%2F..%2Fbin%2Fsh');
  });
});

describe('the Docker socket', () => {
  // Break it catches: the Docker socket mounted into another service of the compose file too (the edges, redis), not only into the controller.
  it('is mounted into the controller only, in the compose file: the edges serving requests have none', () => {
    const compose = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docker-compose.yml'), 'utf8');
    // The `services:` section: from its line to the next top-level key.
    const start = compose.indexOf('\nservices:') + 1;
    const next = compose.slice(start + 1).search(/\n[a-z]/);
    const services = compose.slice(start, next < 0 ? undefined : start + 1 + next);
    const blocks = services.split(/\n(?= {2}[a-z][a-z0-9_-]*:\s*\n)/).slice(1);
    const withSocket = blocks.filter((block) => block.includes('docker.sock')).map((block) => block.trim().split(':')[0]);
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    expect(blocks.some((block) => block.trim().startsWith('gateway:'))).toBe(true);
    expect(withSocket).toEqual(['controller']);
  });
});

describe('pages and socket.io', () => {
  let t: TestGateway;
  let server: Server;
  let url: string;
  beforeAll(async () => {
    t = await startTestGateway({ options: { allowedOrigins: ['https://allowed.example'] } });
    const root = join(import.meta.dirname, '..', '..');
    server = createServer(
      site(
        [
          ['/result', join(root, 'result/dist')],
          ['/', join(root, 'vote/dist')],
        ],
        t.gateway,
      ),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.gateway.attachSockets(server);
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await t.close();
  });

  // Break it catches: the content-security-policy header dropped from the pages' security headers.
  it.each(['/', '/result/', '/function/vote', '/no-such-page'])('%s carries the security headers and the content security policy', async (path) => {
    const response = await fetch(`${url}${path}`);
    const csp = response.headers.get('content-security-policy') ?? '';
    for (const directive of [
      "default-src 'self'",
      "script-src 'self'",
      "connect-src 'self'",
      "frame-ancestors 'none'",
      "object-src 'none'",
      "base-uri 'none'",
    ]) {
      expect(csp).toContain(directive);
    }
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(response.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect(response.headers.get('x-powered-by')).toBeNull();
  });

  const connect = (origin: string | undefined, transport: 'websocket' | 'polling') =>
    new Promise<'connected' | string>((resolve) => {
      const socket = io(url, { transports: [transport], forceNew: true, reconnection: false, extraHeaders: origin ? { origin } : {} });
      const timer = setTimeout(() => {
        socket.close();
        resolve('timeout');
      }, 3_000);
      socket.on('connect', () => {
        clearTimeout(timer);
        socket.close();
        resolve('connected');
      });
      socket.on('connect_error', (error) => {
        clearTimeout(timer);
        socket.close();
        resolve(`refused: ${error.message}`);
      });
    });

  // Break it catches: socket.io accepting any Origin (allowRequest not checking it), so any web site may open a live connection.
  it.each(['websocket', 'polling'] as const)(
    "socket.io (%s) accepts the app's own origin and configured ones, and refuses a foreign one",
    async (transport) => {
      expect(await connect(url, transport)).toBe('connected');
      expect(await connect('https://allowed.example', transport)).toBe('connected');
      expect(await connect('https://evil.example', transport)).toMatch(/^refused/);
      expect(await connect(`http://127.0.0.1.evil.example`, transport)).toMatch(/^refused/);
      expect(await connect('null', transport)).toMatch(/^refused/);
    },
  );
});
