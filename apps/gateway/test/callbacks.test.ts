import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort, waitUntil } from '@platform/test-services';
import { fixtureFunctions, startTestGateway, type TestGateway } from './harness.js';
import { check } from './openapi-check.js';
import { postCallback } from '@platform/core/callback-post';
import type { AsyncCall } from '@platform/core/async-worker';

// X-Callback-Url end to end, with loopback receivers only: `allowed` and `redirecting` are in the
// gateway's allowed hosts, `other` is not and must never receive anything.

interface Receiver {
  port: number;
  received: Array<{ method: string; url: string; headers: IncomingHttpHeaders; body: string }>;
  close(): Promise<void>;
}

async function receiver(answer: (res: ServerResponse) => void = (res) => res.end()): Promise<Receiver> {
  const received: Receiver['received'] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      answer(res);
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('callbacks (X-Callback-Url)', () => {
  let t: TestGateway;
  let allowed: Receiver;
  let other: Receiver;
  let redirecting: Receiver;
  beforeAll(async () => {
    allowed = await receiver();
    other = await receiver();
    redirecting = await receiver((res) => res.writeHead(307, { location: `http://127.0.0.1:${other.port}/moved` }).end());
    t = await startTestGateway({
      functionsDir: fixtureFunctions,
      options: { callResultSeconds: 60, callbackAllowedHosts: [`127.0.0.1:${allowed.port}`, `127.0.0.1:${redirecting.port}`] },
    });
  });
  afterAll(async () => {
    await t.close();
    await Promise.all([allowed.close(), other.close(), redirecting.close()]);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    // Whatever a test did, the receiver outside the allowed hosts got nothing.
    expect(other.received).toEqual([]);
  });

  const invoke = (callbackUrl: string, path = '') =>
    fetch(`${t.url}/async-function/sleepy${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-callback-url': callbackUrl },
      body: JSON.stringify({ n: 1 }),
    });
  const settled = (callId: string) =>
    waitUntil(async () => ((await (await fetch(`${t.url}/system/calls/${callId}`)).json()) as { status: string }).status === 'succeeded', {
      timeoutMs: 10_000,
      what: `call ${callId} to succeed`,
    });

  // Break it catches: a callback host given by name let through without checking the addresses it resolves to, so localhost passes.
  it('refuses loopback and other local targets, by address or by name, and queues nothing', async () => {
    const enqueue = vi.spyOn(t.queue, 'enqueue');
    const first = await invoke(`http://127.0.0.1:${other.port}/`);
    expect(first.status).toBe(400);
    expect(await check('POST', '/async-function/{name}', first)).toEqual({
      error: 'X-Callback-Url points to 127.0.0.1, a loopback address: callbacks may only go to public addresses or to hosts in CALLBACK_ALLOWED_HOSTS',
    });
    const refused: Array<[string, RegExp]> = [
      [`http://localhost:${other.port}/`, /host localhost is refused/],
      [`http://2130706433:${other.port}/`, /points to 127\.0\.0\.1, a loopback address/],
      [`http://0177.0.0.1:${other.port}/`, /points to 127\.0\.0\.1, a loopback address/],
      [`http://0x7f.1:${other.port}/`, /points to 127\.0\.0\.1, a loopback address/],
      [`http://127.1:${other.port}/`, /points to 127\.0\.0\.1, a loopback address/],
      [`http://[::ffff:127.0.0.1]:${other.port}/`, /\(IPv4 127\.0\.0\.1\), a loopback address/],
      [`http://[::1]:${other.port}/`, /points to ::1, a loopback address/],
      [`http://[::]:${other.port}/`, /points to ::, an unspecified address/],
      [`http://0.0.0.0:${other.port}/`, /points to 0\.0\.0\.0, an unspecified address/],
      [`http://169.254.169.254/latest/meta-data/`, /a link-local address/],
      [`http://10.1.2.3:2375/containers/json`, /a private address/],
      [`http://[fe80::1%25eth0]:${other.port}/`, /not a valid URL/],
      // Allowed hosts are matched by name: localhost is not 127.0.0.1, even on an allowed port.
      [`http://localhost:${allowed.port}/`, /host localhost is refused/],
    ];
    for (const [url, message] of refused) {
      const response = await invoke(url);
      expect(response.status, url).toBe(400);
      expect(((await response.json()) as { error: string }).error, url).toMatch(message);
    }
    expect(enqueue).not.toHaveBeenCalled();
    expect(await t.queue.depth()).toBe(0);
  });

  // Break it catches: the callback posted without the X-Function-Status header, so the receiver cannot tell a failed call from a good one.
  it('posts the result to an allowed host, with the call and function headers', async () => {
    const response = await invoke(`http://127.0.0.1:${allowed.port}/done?x=1`, '/later');
    expect(response.status).toBe(202);
    const callId = response.headers.get('x-call-id')!;
    await waitUntil(() => allowed.received.length === 1, { what: 'the callback' });
    const [callback] = allowed.received;
    expect(callback).toMatchObject({
      method: 'POST',
      url: '/done?x=1',
      headers: { 'x-call-id': callId, 'x-function-name': 'sleepy', 'x-function-status': '200', 'content-type': expect.stringMatching(/^application\/json/) },
    });
    expect(Number(callback!.headers['x-duration-seconds'])).toBeGreaterThanOrEqual(0);
    expect(JSON.parse(callback!.body)).toMatchObject({ path: '/later', body: '{"n":1}' });
  });

  // Break it catches: the callback sent with fetch(), which follows the 307 to a host that was never checked.
  it('does not follow a redirect, not even to another loopback port', async () => {
    const response = await invoke(`http://127.0.0.1:${redirecting.port}/hook`);
    expect(response.status).toBe(202);
    const callId = response.headers.get('x-call-id')!;
    // The call settles once its callback is done: any redirect would have been followed by then.
    await settled(callId);
    expect(redirecting.received.map((r) => r.headers['x-call-id'])).toEqual([callId]);
  });

  // Break it catches: the send-time check skipped, the callback URL trusted as it was queued.
  it('checks the callback again when it is sent, and refuses what is no longer allowed', async () => {
    // Calls already in the queue (accepted when the name pointed elsewhere, or by an older gateway).
    const queued = (callbackUrl: string): AsyncCall => ({
      callId: randomUUID(),
      function: 'sleepy',
      request: { method: 'POST', path: '/', query: {}, headers: { 'content-type': 'application/json' }, body: '{}' },
      callbackUrl,
      acceptedAt: Date.now(),
    });
    const refused = queued(`http://127.0.0.1:${other.port}/late`);
    const delivered = queued(`http://127.0.0.1:${allowed.port}/late`);
    await t.queue.enqueue(JSON.stringify(refused));
    await t.queue.enqueue(JSON.stringify(delivered));
    await settled(refused.callId);
    await settled(delivered.callId);
    expect(allowed.received.some((r) => r.headers['x-call-id'] === delivered.callId)).toBe(true);
  });

  // Break it catches: the callback connecting to a fresh DNS lookup of its host instead of the checked address (no pinned lookup).
  it('connects to the checked address, never to a fresh lookup of the name', async () => {
    // `.invalid` never resolves: the request can only arrive through the pinned address.
    const status = await postCallback({ url: new URL(`http://callback.invalid:${allowed.port}/pinned`), address: '127.0.0.1', family: 4 }, 'hi', {
      'x-call-id': 'pinned',
    });
    expect(status).toBe(200);
    const pinned = allowed.received.find((r) => r.url === '/pinned')!;
    expect(pinned).toMatchObject({ method: 'POST', body: 'hi', headers: { host: `callback.invalid:${allowed.port}`, 'x-call-id': 'pinned' } });
  });
});
