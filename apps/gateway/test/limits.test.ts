import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { io } from 'socket.io-client';
import { createTestDatabase, waitUntil } from '@platform/test-services';
import { fixtureFunctions, startTestGateway, type TestGateway } from './harness.js';
import { childGateway, report, type ChildGateway } from './faults.js';
import { voterOfCookie } from '../src/voting.js';

const json = { 'content-type': 'application/json' };
const vote = (url: string, path = '/function/vote', cookie?: string) =>
  fetch(`${url}${path}`, { method: 'POST', headers: { ...json, ...(cookie ? { cookie } : {}) }, body: '{"vote":"a"}' });
const cookieOf = (response: Response) => response.headers.get('set-cookie')!.split(';')[0]!;
const shed = async (url: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Object.fromEntries(
    [...text.matchAll(/^gateway_requests_shed_total\{function_name="([^"]+)",reason="([^"]+)"\} (\d+)$/gm)].map((m) => [`${m[1]} ${m[2]}`, Number(m[3])]),
  );
};

describe('rate limits on the vote path, a bounded line of queue writes', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({
      options: {
        rateLimits: [{ function: 'vote', windowSeconds: 30, perAddress: 12, perCookie: { name: 'voter_id', limit: 3, holder: voterOfCookie } }],
        maxPendingEnqueues: 2,
      },
    });
  });
  afterAll(async () => {
    await t.close();
  });
  const rows = async () => (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM votes')).rows[0]!.n;

  it('limits each voter, then each address: 429 with Retry-After and a JSON error, nothing recorded', async () => {
    const first = await vote(t.url);
    expect(first.status).toBe(200);
    // As a browser does: each answer's cookie (its vote count new every time) goes with the next vote.
    // Break it catches: the limit keyed on the whole cookie, whose count changes at every vote.
    let cookie = cookieOf(first);
    for (let i = 0; i < 3; i++) {
      const next = await vote(t.url, '/function/vote', cookie);
      expect(next.status).toBe(200);
      cookie = cookieOf(next);
    }
    const limited = await vote(t.url, '/function/vote', cookie);
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(30);
    expect(await limited.json()).toEqual({ error: 'too many calls to vote for this voter_id: at most 3 per 30 s' });
    // Reading the page's data is not limited.
    expect((await fetch(`${t.url}/function/vote`)).status).toBe(200);
    // Another voter from the same address goes on until the address's limit (12: 4 used, one refused above counted too).
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await vote(t.url)).status);
    expect(statuses.filter((s) => s === 200).length).toBe(7);
    expect(statuses.slice(7)).toEqual([429, 429, 429]);
    // Every route to the vote function shares the limit: the form post and the async route too.
    const form = await fetch(`${t.url}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'vote=b',
      redirect: 'manual',
    });
    expect(form.status).toBe(429);
    expect((await fetch(`${t.url}/async-function/vote`, { method: 'POST', headers: json, body: '{"vote":"a"}' })).status).toBe(429);
    await waitUntil(async () => (await t.queue.depth()) === 0, { what: 'queue drained' });
    // One row for the first voter (4 votes), one for each of the 7 other accepted voters; none for refused votes.
    await waitUntil(async () => (await rows()) === 8, { what: 'the accepted votes recorded' });
    await new Promise((r) => setTimeout(r, 300));
    expect(await rows()).toBe(8);
    const counts = await shed(t.url);
    report(['rate limits (per voter 3, per address 12, per 30 s):', ["answers after the first voter's 4 votes", statuses], ['shed in metrics', counts]]);
    expect(counts['vote rate_limit_cookie']).toBe(1);
    expect(counts['vote rate_limit_address']).toBe(5);
  });

  it('sheds async calls with 503 when writes to the queue pile up, and counts them', async () => {
    // Block inserts into the queue so that writes wait in the gateway.
    const blocker = new pg.Client({ connectionString: t.databaseUrl });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE fn_queue IN EXCLUSIVE MODE');
    let answered = 0;
    const calls = Array.from({ length: 5 }, () => fetch(`${t.url}/async-function/results`, { method: 'POST' }).finally(() => answered++));
    // The 3 beyond the limit are answered at once, while the 2 writes still wait for the lock.
    const early = await waitUntil(() => answered >= 3 && answered, { timeoutMs: 3_000, what: '3 calls shed' }).catch(() => answered);
    const answeredWhileBlocked = answered;
    await blocker.query('COMMIT');
    await blocker.end();
    const responses = await Promise.all(calls);
    const statuses = responses.map((r) => r.status).sort();
    expect(early).toBe(3);
    expect(answeredWhileBlocked).toBe(3);
    expect(statuses).toEqual([202, 202, 503, 503, 503]);
    const refused = responses.find((r) => r.status === 503)!;
    expect(refused.headers.get('retry-after')).toBe('1');
    expect((await shed(t.url))['results queue_full']).toBe(3);
  });
});

describe('rate limits shared by the edges on one database', () => {
  let db: { url: string; drop(): Promise<void> };
  const edges: TestGateway[] = [];
  beforeAll(async () => {
    db = await createTestDatabase(process.env.DATABASE_URL!);
    for (let i = 0; i < 2; i++) {
      edges.push(
        await startTestGateway({
          database: db.url,
          options: {
            rateLimits: [
              { function: 'vote', windowSeconds: 30, perAddress: 6, exemptAddresses: [], perCookie: { name: 'voter_id', limit: 3, holder: voterOfCookie } },
            ],
          },
        }),
      );
    }
  });
  afterAll(async () => {
    for (const t of edges) await t.close();
    await db?.drop();
  });

  // Break it catches: counters kept by each gateway (a voter, or an address, gets each limit once per edge).
  it('holds the per-voter and per-address limits whichever edge each vote reaches', async () => {
    const [a, b] = edges as [TestGateway, TestGateway];
    const first = await vote(a.url);
    expect(first.status).toBe(200);
    let cookie = cookieOf(first);
    const statuses: number[] = [];
    for (const t of [b, a, b, a, b]) {
      const next = await vote(t.url, '/function/vote', cookie);
      statuses.push(next.status);
      if (next.status === 200) cookie = cookieOf(next);
      else expect(Number(next.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    // The voter's 3 votes with a cookie, then refused by both edges.
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    // The address has 6 calls per window on the two edges together: 6 counted above, so new voters are refused too.
    expect((await vote(a.url)).status).toBe(429);
    expect((await vote(b.url)).status).toBe(429);
    expect([(await shed(a.url))['vote rate_limit_address'], (await shed(b.url))['vote rate_limit_address']]).toEqual([1, 1]);
  });
});

describe('limits as settings of the app', () => {
  let app: ChildGateway | undefined;
  let db: { url: string; drop(): Promise<void> } | undefined;
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('applies VOTE_RATE_LIMIT_*, MAX_HEADER_BYTES and BODY_LIMIT', { timeout: 60_000 }, async () => {
    db = await createTestDatabase(process.env.DATABASE_URL!);
    app = await childGateway({
      DATABASE_URL: db.url,
      VOTE_RATE_LIMIT_PER_ADDRESS: '3',
      VOTE_RATE_LIMIT_EXEMPT_ADDRESSES: '',
      VOTE_RATE_LIMIT_WINDOW_SECONDS: '60',
      MAX_HEADER_BYTES: '4096',
      BODY_LIMIT: '2kb',
    });
    await app.start();
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await vote(app.url)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const big = await fetch(`${app.url}/function/results`, { headers: { 'x-padding': 'p'.repeat(5_000) } });
    expect(big.status).toBe(431);
    const body = await fetch(`${app.url}/function/results`, { method: 'POST', headers: json, body: `{"x":"${'x'.repeat(3_000)}"}` });
    expect(body.status).toBe(413);
    expect(await body.json()).toEqual({ error: 'request body is too large' });
  });
});

describe('the per-address limit and shared addresses', () => {
  // Documentation addresses (RFC 5737) appear only inside headers: no traffic goes anywhere but loopback.
  const publicClient = '203.0.113.7';
  const gateways: TestGateway[] = [];
  const start = async (limit: { exemptAddresses?: string[] }, trustProxy?: string[]) => {
    const t = await startTestGateway({
      options: { trustProxy, rateLimits: [{ function: 'vote', windowSeconds: 30, perAddress: 3, ...limit }] },
    });
    gateways.push(t);
    return t;
  };
  const voteFrom = (t: TestGateway, forwardedFor?: string) =>
    fetch(`${t.url}/function/vote`, {
      method: 'POST',
      headers: { ...json, ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}) },
      body: '{"vote":"a"}',
    });
  const statuses = async (n: number, send: () => Promise<Response>) => {
    const seen: number[] = [];
    for (let i = 0; i < n; i++) seen.push((await send()).status);
    return seen;
  };
  afterAll(async () => {
    for (const t of gateways) await t.close();
  });

  // Break it catches: the limit applied to every address (a room behind one NAT refused).
  it('leaves exempt addresses alone: a room behind one private address votes freely', async () => {
    const t = await start({ exemptAddresses: ['loopback', 'linklocal', 'uniquelocal'] });
    expect(await statuses(10, () => voteFrom(t))).toEqual(Array(10).fill(200));
  });

  // Break it catches: X-Forwarded-For believed from anyone (a client picks its own address and escapes the limit).
  it('ignores X-Forwarded-For unless the connection comes from a trusted proxy', async () => {
    const t = await start({ exemptAddresses: [] });
    let n = 0;
    expect(await statuses(5, () => voteFrom(t, `198.51.100.${++n}`))).toEqual([200, 200, 200, 429, 429]);
  });

  // Breaks it catches: the proxy's own address limited instead of each client; a private client behind the proxy limited.
  it('behind a trusted proxy, limits each client named by X-Forwarded-For, and exempts private ones', async () => {
    const t = await start({ exemptAddresses: ['loopback', 'uniquelocal'] }, ['loopback']);
    expect(await statuses(4, () => voteFrom(t, publicClient))).toEqual([200, 200, 200, 429]);
    expect(await statuses(3, () => voteFrom(t, '198.51.100.9'))).toEqual([200, 200, 200]);
    expect(await statuses(5, () => voteFrom(t, '10.1.2.3'))).toEqual(Array(5).fill(200));
    // The client is the last address not of a trusted proxy: a forged first entry changes nothing.
    expect((await voteFrom(t, `10.9.9.9, ${publicClient}`)).status).toBe(429);
  });
});

describe("a function's bounded line", () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ functionsDir: fixtureFunctions });
  });
  afterAll(async () => t.close());

  it('answers 429 with Retry-After beyond maxConcurrency + maxQueued, and counts it as shed', async () => {
    // sleepy: maxConcurrency 2, maxQueued 2, timeout 1 s. Its two instances warm first (no cold start within the timeout).
    await Promise.all([fetch(`${t.url}/function/sleepy?sleep=100`), fetch(`${t.url}/function/sleepy?sleep=100`)]);
    const statuses = await Promise.all(Array.from({ length: 6 }, () => fetch(`${t.url}/function/sleepy?sleep=200`))).then((all) =>
      all.map((r) => ({ status: r.status, retryAfter: r.headers.get('retry-after') })),
    );
    expect(statuses.filter((s) => s.status === 200)).toHaveLength(4);
    expect(statuses.filter((s) => s.status === 429)).toEqual([
      { status: 429, retryAfter: '1' },
      { status: 429, retryAfter: '1' },
    ]);
    expect((await shed(t.url))['sleepy busy']).toBe(2);
  });
});

describe('a bounded number of live clients', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ options: { maxLiveClients: 2 } });
  });
  afterAll(async () => t.close());

  it('refuses a socket.io connection beyond maxLiveClients, and takes one again once a client left', async () => {
    const open = () => {
      const socket = io(t.url, { transports: ['websocket'], forceNew: true, reconnection: false });
      const outcome = new Promise<string>((resolve) => {
        socket.once('connect', () => resolve('connected'));
        socket.once('connect_error', (error) => resolve(`refused: ${error.message}`));
      });
      return { socket, outcome };
    };
    const first = open();
    const second = open();
    expect([await first.outcome, await second.outcome]).toEqual(['connected', 'connected']);
    const third = open();
    expect(await third.outcome).toMatch(/^refused/);
    first.socket.close();
    await waitUntil(
      async () => {
        const again = open();
        const outcome = await again.outcome;
        again.socket.close();
        return outcome === 'connected';
      },
      { what: 'a connection once a client left' },
    );
    second.socket.close();
  });
});
