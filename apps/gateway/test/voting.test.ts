import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitUntil } from '@platform/test-services';
import { startTestGateway, type TestGateway } from './harness.js';

// The whole flow once with the queue and events on PostgreSQL (the embedded default) and once
// on Redis (the stack's choice).
describe.each([
  ['PostgreSQL', () => ({})],
  ['Redis', () => ({ queueUrl: process.env.REDIS_URL!, eventsUrl: process.env.REDIS_URL! })],
])('voting through the gateway (process runtime, queue and events on %s)', (_backend, backend) => {
  let t: TestGateway;
  /**
   * Where the async call's callback is received: the one loopback host:port the gateway may call
   * back, listening from the start (a port only picked then could be taken by the time it listens).
   */
  const received: Array<{ headers: Record<string, unknown>; body: string }> = [];
  const callbacks = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.end();
    });
  });
  beforeAll(async () => {
    await new Promise<void>((resolve) => callbacks.listen(0, '127.0.0.1', resolve));
    const callbackPort = (callbacks.address() as AddressInfo).port;
    t = await startTestGateway({ ...backend(), options: { callbackAllowedHosts: [`127.0.0.1:${callbackPort}`] } });
  });
  afterAll(async () => {
    callbacks.close();
    await t.close();
  });

  const tallies = async () => {
    const { rows } = await t.db.query<{ vote: string; n: number }>('SELECT vote, COUNT(id)::int AS n FROM votes GROUP BY vote');
    return Object.fromEntries(rows.map((r) => [r.vote, r.n]));
  };
  const voteJson = (vote: unknown, cookie?: string) =>
    fetch(`${t.url}/function/vote`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
      body: JSON.stringify({ vote }),
    });
  const cookieOf = (response: Response) => response.headers.get('set-cookie')!.split(';')[0]!;

  it('shows the configured options', async () => {
    const response = await fetch(`${t.url}/function/vote`);
    expect(await response.json()).toEqual({ question: 'Cats vs Dogs!', options: { a: 'Cats', b: 'Dogs' } });
    expect(await (await fetch(`${t.url}/function/results/options`)).json()).toEqual({ a: 'Cats', b: 'Dogs' });
  });

  it('records a vote, then a changed vote, for one voter', async () => {
    const first = await voteJson('a');
    expect(first.status).toBe(200);
    const body = (await first.json()) as { vote: string; voterId: string; instance: string };
    expect(body.vote).toBe('a');
    expect(body.instance).toMatch(/^vote-/);
    const cookie = cookieOf(first);
    expect(cookie).toMatch(/^voter_id=[0-9a-f]{32}\.1\.[\w-]{22}$/);
    expect(first.headers.get('set-cookie')).toContain('HttpOnly');
    await waitUntil(async () => (await tallies()).a === 1, { what: 'first vote recorded' });

    const second = await voteJson('b', cookie);
    expect(((await second.json()) as { voterId: string }).voterId).toBe(body.voterId);
    await waitUntil(
      async () => {
        const now = await tallies();
        return now.b === 1 && !now.a;
      },
      { what: 'changed vote recorded' },
    );
    const { rows } = await t.db.query('SELECT id, vote FROM votes');
    expect(rows).toEqual([{ id: body.voterId, vote: 'b' }]);
  });

  it('pushes scores to socket.io clients on connect and after each change', async () => {
    const socket: Socket = io(t.url, { transports: ['websocket'], forceNew: true });
    const received: Array<{ a?: number; b?: number }> = [];
    socket.on('scores', (json: string) => received.push(JSON.parse(json)));
    const count = (scores: { a?: number; b?: number } | undefined, option: 'a' | 'b') => scores?.[option] ?? 0;
    try {
      await waitUntil(() => received.length > 0, { what: 'scores on connect' });
      // The previous test's last change may still be on its way: the pushed state settles on the table's.
      const table = await tallies();
      await waitUntil(() => count(received.at(-1), 'a') === (table.a ?? 0) && count(received.at(-1), 'b') === (table.b ?? 0), {
        what: `pushed scores equal to the table's ${JSON.stringify(table)}`,
      });
      await voteJson('a');
      await waitUntil(() => count(received.at(-1), 'a') === (table.a ?? 0) + 1, { timeoutMs: 2_000, what: 'scores after a vote' });
    } finally {
      socket.close();
    }
  });

  // Break it catches: the greeting (`message` with { text: 'Welcome!' }) dropped from the socket protocol, so the original result page never subscribes.
  it("speaks the original result server's protocol: `message` first, `subscribe`, then live `scores` as JSON text", async () => {
    // As the original page does: it shows itself and registers for `scores` only once `message` came.
    const socket: Socket = io(t.url, { transports: ['websocket'], forceNew: true });
    const received: string[] = [];
    const welcome = await new Promise<unknown>((resolve) =>
      socket.once('message', (data: unknown) => {
        socket.on('scores', (json: string) => received.push(json));
        resolve(data);
      }),
    );
    try {
      expect(welcome).toEqual({ text: 'Welcome!' });
      socket.emit('subscribe', { channel: 'scores' });
      socket.emit('subscribe', 'not an object'); // ignored, as are rooms of no name
      await waitUntil(() => received.length > 0, { what: 'scores sent after the greeting' });
      expect(typeof received[0]).toBe('string');
      const before = JSON.parse(received.at(-1)!) as { b?: number };
      const table = await tallies();
      await voteJson('b');
      await waitUntil(() => (JSON.parse(received.at(-1)!) as { b?: number }).b === (table.b ?? 0) + 1, {
        timeoutMs: 2_000,
        what: `scores after a vote (was ${JSON.stringify(before)})`,
      });
      expect(socket.connected).toBe(true);
    } finally {
      socket.close();
    }
  });

  // Break it catches: the channel refreshing on every vote with nobody connected (each edge then reads
  // the scores 20 times a second under load), or a client that comes later getting the old scores.
  it('asks the results function nothing while no client watches; the next client gets the current scores', async () => {
    const refreshes = async () => {
      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      return [...metrics.matchAll(/^gateway_function_invocation_total\{function_name="results",code="\d+"\} (\d+)/gm)].reduce(
        (sum, m) => sum + Number(m[1]),
        0,
      );
    };
    // The earlier tests' sockets have closed: wait for the server to see them gone.
    await waitUntil(
      async () => {
        const before = await refreshes();
        await new Promise((r) => setTimeout(r, 300));
        return (await refreshes()) === before;
      },
      { what: 'no refresh for 300 ms' },
    );
    const before = await refreshes();
    const table = await tallies();
    for (let i = 0; i < 5; i++) expect((await voteJson(i % 2 ? 'b' : 'a')).status).toBe(200);
    const expected = { a: (table.a ?? 0) + 3, b: (table.b ?? 0) + 2 };
    await waitUntil(async () => JSON.stringify(await tallies()) === JSON.stringify(expected), { what: `votes recorded: ${JSON.stringify(expected)}` });
    await new Promise((r) => setTimeout(r, 200));
    expect(await refreshes()).toBe(before);

    const socket: Socket = io(t.url, { transports: ['websocket'], forceNew: true });
    try {
      const first = await new Promise<{ a?: number; b?: number }>((resolve) => socket.once('scores', (json: string) => resolve(JSON.parse(json))));
      expect(first).toEqual(expected);
    } finally {
      socket.close();
    }
  });

  it('accepts the original form post at POST /, with and without a cookie', async () => {
    await t.db.query('TRUNCATE votes');
    const response = await fetch(`${t.url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'vote=b',
      redirect: 'manual',
    });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/');
    const again = await fetch(`${t.url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookieOf(response) },
      body: 'vote=a',
      redirect: 'manual',
    });
    expect(again.status).toBe(303);
    await waitUntil(async () => (await tallies()).a === 1, { what: 'form votes recorded' });
    expect(await tallies()).toEqual({ a: 1 });
  });

  it('counts 1,000 concurrent form-post votes exactly (2 of 3 for a)', async () => {
    await t.db.query('TRUNCATE votes');
    const started = Date.now();
    const responses = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) =>
        fetch(`${t.url}/`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `vote=${i % 3 === 2 ? 'b' : 'a'}`,
          redirect: 'manual',
        }),
      ),
    );
    expect(responses.map((r) => r.status).filter((s) => s !== 303)).toEqual([]);
    const accepted = Date.now() - started;
    await waitUntil(
      async () => {
        const now = await tallies();
        return now.a === 667 && now.b === 333;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: 'exact tallies' },
    );
    process.stdout.write(`1,000 votes: accepted in ${accepted} ms, tallies exact after ${Date.now() - started} ms\n`);
  });

  describe('bad input: a 4xx with a JSON error, and nothing enqueued or changed', () => {
    const cases: Array<[string, RequestInit & { path?: string }, number, RegExp]> = [
      ['a vote other than a/b', { body: '{"vote":"c"}', headers: { 'content-type': 'application/json' } }, 400, /invalid vote "c"/],
      ['a missing vote', { body: '{}', headers: { 'content-type': 'application/json' } }, 400, /missing "vote"/],
      ['malformed JSON', { body: '{"vote":', headers: { 'content-type': 'application/json' } }, 400, /not valid JSON/],
      ['a body over 16 KB', { body: `{"vote":"a","pad":"${'x'.repeat(17_000)}"}`, headers: { 'content-type': 'application/json' } }, 413, /too large/],
      ['a wrong content type', { body: 'vote=a', headers: { 'content-type': 'text/plain' } }, 415, /Content-Type must be/],
      [
        'a malformed voter cookie',
        { body: '{"vote":"a"}', headers: { 'content-type': 'application/json', cookie: 'voter_id=abc' } },
        400,
        /malformed voter_id/,
      ],
      [
        'a forged voter cookie',
        { body: '{"vote":"a"}', headers: { 'content-type': 'application/json', cookie: `voter_id=${'a'.repeat(32)}.${'A'.repeat(22)}` } },
        400,
        /invalid signature/,
      ],
    ];

    it.each(cases)('%s', async (_label, init, status, message) => {
      // The calls of the tests before are settled (acknowledged), so any depth now is this request's.
      await waitUntil(async () => (await t.queue.depth()) === 0, { timeoutMs: 10_000, what: 'the queue to drain' });
      await t.db.query('TRUNCATE votes');
      const response = await fetch(`${t.url}/function/vote`, { method: 'POST', ...init });
      expect(response.status).toBe(status);
      expect(response.headers.get('content-type')).toMatch(/application\/json/);
      expect(((await response.json()) as { error: string }).error).toMatch(message);
      expect(await t.queue.depth()).toBe(0);
      await new Promise((r) => setTimeout(r, 100));
      expect(await tallies()).toEqual({});
    });

    it.each([
      ['/function/..%2F..%2Fetc%2Fpasswd', 400],
      ['/function/VOTE', 400],
      [`/function/${'a'.repeat(100)}`, 400],
      ['/function/no-such-function', 404],
      ['/async-function/no-such-function', 404],
      ['/async-function/..%2Fvote', 400],
    ])('%s is a %i', async (path, status) => {
      const response = await fetch(`${t.url}${path}`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
      expect(response.status).toBe(status);
      expect(((await response.json()) as { error: string }).error).toMatch(status === 404 ? /not found/ : /invalid function name/);
      expect(await t.queue.depth()).toBe(0);
    });
  });

  it('lists functions in the OpenFaaS FunctionStatus shape', async () => {
    const list = (await (await fetch(`${t.url}/system/functions`)).json()) as Array<Record<string, unknown>>;
    expect(list.map((f) => f.name)).toEqual(['record-vote', 'results', 'vote']);
    for (const fn of list) {
      expect(fn).toEqual(
        expect.objectContaining({
          name: expect.any(String),
          image: expect.any(String),
          replicas: expect.any(Number),
          availableReplicas: expect.any(Number),
          invocationCount: expect.any(Number),
        }),
      );
    }
    expect(list.find((f) => f.name === 'vote')!.invocationCount).toBeGreaterThan(0);
    expect(await (await fetch(`${t.url}/healthz`)).json()).toMatchObject({ status: 'ok', runtime: 'process' });
  });

  it('runs an async call and posts its result to the callback URL', async () => {
    const port = (callbacks.address() as AddressInfo).port;
    const response = await fetch(`${t.url}/async-function/results/options`, {
      method: 'POST',
      headers: { 'x-callback-url': `http://127.0.0.1:${port}/done` },
    });
    expect(response.status).toBe(202);
    const callId = response.headers.get('x-call-id');
    expect(callId).toMatch(/^[0-9a-f-]{36}$/);
    // results only answers GET: the callback reports its 405, a final answer not retried.
    await waitUntil(() => received.length === 1, { what: 'callback' });
    expect(received[0]!.headers).toMatchObject({ 'x-call-id': callId, 'x-function-status': '405' });
    expect(Number(received[0]!.headers['x-duration-seconds'])).toBeGreaterThanOrEqual(0);
    expect(JSON.parse(received[0]!.body)).toEqual({ error: 'use GET' });
    const bad = await fetch(`${t.url}/async-function/results`, { method: 'POST', headers: { 'x-callback-url': 'file:///etc/passwd' } });
    expect(bad.status).toBe(400);
  });
});
