import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io } from 'socket.io-client';
import { appProcess, createTestDatabase, waitUntil, type AppProcess } from '@platform/test-services';
import { originRule, UNNAMED_CROSS_SITE } from '@platform/core/origin';
import { defaultLiveClientsPerAddress } from '@platform/core/gateway';
import { FIRST_BYTES_TIMEOUT_MS } from '@platform/core/edge/sticky';
import { startTestGateway, type TestGateway } from './harness.js';
import { loadConfig } from '../src/config.js';

/** One HTTP request from a chosen loopback address, with exactly the headers given. */
function send(
  url: string,
  { method = 'GET', headers = {}, body, localAddress = '127.0.0.1' }: { method?: string; headers?: OutgoingHttpHeaders; body?: string; localAddress?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, localAddress, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the origin rule', () => {
  const rule = originRule({ allowed: ['https://vote.example.com/', 'https://partner.example'], pagePorts: [8080, 8081] });
  const host = '127.0.0.1:8080';

  // Break it catches: a rule that lets any Origin through, or that reads Sec-Fetch-Site: same-site (another port) as the app's own.
  it.each([
    [undefined, undefined, undefined],
    [undefined, 'none', undefined],
    [undefined, 'same-origin', undefined],
    [undefined, 'same-site', undefined],
    [undefined, 'cross-site', UNNAMED_CROSS_SITE],
    ['http://127.0.0.1:8080', 'same-origin', undefined],
    ['https://127.0.0.1:8080', undefined, undefined],
    ['http://127.0.0.1:8081', 'same-site', undefined],
    ['http://127.0.0.1:9999', 'same-site', 'http://127.0.0.1:9999'],
    ['http://localhost:8080', 'cross-site', 'http://localhost:8080'],
    ['http://127.0.0.1.evil.example', 'cross-site', 'http://127.0.0.1.evil.example'],
    ['http://evil.example:8080', 'cross-site', 'http://evil.example:8080'],
    ['https://vote.example.com', 'cross-site', undefined],
    ['https://partner.example', 'cross-site', undefined],
    ['https://partner.example:444', 'cross-site', 'https://partner.example:444'],
    ['https://evil.example', 'cross-site', 'https://evil.example'],
    ['https://vote.example.com/path', undefined, 'https://vote.example.com/path'],
    ['null', undefined, 'null'],
    ['null', 'cross-site', 'null'],
    ['null', 'same-site', 'null'],
    ['null', 'same-origin', undefined],
    ['not an origin', undefined, 'not an origin'],
  ])('Origin %s with Sec-Fetch-Site %s: %s', (origin, site, refused) => {
    expect(rule({ host, origin, 'sec-fetch-site': site })).toBe(refused);
  });

  // Break it catches: the other page server's port allowed on any host, not only the one the request names.
  it('takes the other page server only on the host the request names', () => {
    expect(rule({ host: 'vote.local:8080', origin: 'http://vote.local:8081' })).toBeUndefined();
    expect(rule({ host: 'vote.local:8080', origin: 'http://other.local:8081' })).toBe('http://other.local:8081');
    expect(rule({ host: undefined, origin: 'http://vote.local:8081' })).toBe('http://vote.local:8081');
  });
});

describe('the allowed origins setting', () => {
  // Break it catches: SOCKET_ORIGINS no longer read (a deployment's configured origins dropped), or an entry with a path taken and never matching.
  it('reads ALLOWED_ORIGINS and its former name SOCKET_ORIGINS into one list, and refuses an entry that is not an origin', () => {
    expect(loadConfig({ ALLOWED_ORIGINS: 'https://a.example, https://b.example:8443', SOCKET_ORIGINS: 'https://c.example' }).ALLOWED_ORIGINS).toEqual([
      'https://a.example',
      'https://b.example:8443',
      'https://c.example',
    ]);
    expect(loadConfig({}).ALLOWED_ORIGINS).toEqual([]);
    expect(() => loadConfig({ ALLOWED_ORIGINS: 'https://a.example/vote' })).toThrow(/ALLOWED_ORIGINS: use origins/);
    expect(() => loadConfig({ SOCKET_ORIGINS: 'a.example' })).toThrow(/SOCKET_ORIGINS: use origins/);
  });
});

describe('calls from other web sites', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ options: { publicUrl: 'https://vote.example.com/', allowedOrigins: ['https://partner.example'] } });
  });
  afterAll(async () => t.close());

  const votes = async () => (await t.db.query('SELECT count(*)::int AS n FROM votes')).rows[0].n as number;
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const json = { 'content-type': 'application/json' };

  // Break it catches: the origin check left out of the call routes (or only on one of them), so another site's page votes through its visitors' browsers.
  it('refuses a foreign page on every call route with a 403 naming its origin, and records nothing', async () => {
    const refused: Array<[string, OutgoingHttpHeaders, string, string]> = [
      ['/', { ...form, origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }, 'vote=b', 'https://evil.example'],
      ['/function/vote', { ...json, origin: 'http://127.0.0.1:1', 'sec-fetch-site': 'same-site' }, '{"vote":"b"}', 'http://127.0.0.1:1'],
      ['/async-function/vote', { ...json, origin: 'null', 'sec-fetch-site': 'cross-site' }, '{"vote":"b"}', 'null'],
      ['/function/vote', { ...json, 'sec-fetch-site': 'cross-site' }, '{"vote":"b"}', UNNAMED_CROSS_SITE],
    ];
    for (const [path, headers, body, origin] of refused) {
      const response = await send(`${t.url}${path}`, { method: 'POST', headers, body });
      expect(response.status, path).toBe(403);
      expect(JSON.parse(response.body)).toEqual({ error: `requests from ${origin} may not call functions: only the app's own pages and its allowed origins` });
    }
    expect(await t.queue.depth()).toBe(0);
    // A control vote without any browser header, counted: the refused ones had as long to be.
    expect((await send(`${t.url}/`, { method: 'POST', headers: form, body: 'vote=a' })).status).toBe(303);
    await waitUntil(async () => (await votes()) >= 1, { what: 'the control vote' });
    expect(await votes()).toBe(1);
    expect((await t.db.query('SELECT vote FROM votes')).rows).toEqual([{ vote: 'a' }]);
  });

  // Break it catches: a rule that refuses the app's own pages (a no-referrer page's `Origin: null`), PUBLIC_URL or ALLOWED_ORIGINS.
  it("takes the app's own pages, the public URL's origin and the allowed origins", async () => {
    const before = await votes();
    const allowed: Array<[string, OutgoingHttpHeaders]> = [
      ['/', { ...form, origin: t.url, 'sec-fetch-site': 'same-origin' }],
      ['/', { ...form, origin: 'null', 'sec-fetch-site': 'same-origin' }],
      ['/', { ...form, origin: 'https://vote.example.com', 'sec-fetch-site': 'cross-site' }],
      ['/', { ...form, origin: 'https://partner.example', 'sec-fetch-site': 'cross-site' }],
    ];
    for (const [path, headers] of allowed) {
      expect((await send(`${t.url}${path}`, { method: 'POST', headers, body: 'vote=b' })).status, JSON.stringify(headers)).toBe(303);
    }
    await waitUntil(async () => (await votes()) === before + allowed.length, { what: 'the allowed votes' });
  });
});

describe('live clients per address', () => {
  let t: TestGateway;
  const max = 12;
  const share = 4;
  beforeAll(async () => {
    t = await startTestGateway({ options: { maxLiveClients: max, maxLiveClientsPerAddress: share } });
  });
  afterAll(async () => t.close());

  const handshake = (localAddress: string) => send(`${t.url}/socket.io/?EIO=4&transport=polling`, { localAddress });

  it('defaults to 1% of the live clients, at least 100, never more than all of them', () => {
    expect(defaultLiveClientsPerAddress(10_000)).toBe(100);
    expect(defaultLiveClientsPerAddress(1_000_000)).toBe(10_000);
    expect(defaultLiveClientsPerAddress(50)).toBe(50);
  });

  // Break it catches: no per-address share (only the global MAX_LIVE_CLIENTS), so one address's flood of polling handshakes refuses everyone else.
  it("refuses one address's flood beyond its share while another address connects and gets the scores", async () => {
    const flood = await Promise.all(Array.from({ length: max }, () => handshake('127.0.0.1')));
    // Another address, over websocket: it connects and is sent the scores, or says why not.
    const other = io(t.url, { transports: ['websocket'], forceNew: true, reconnection: false, localAddress: '127.0.0.2' } as Parameters<typeof io>[1]);
    let timer: NodeJS.Timeout | undefined;
    const seen = await new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve('no scores within 10 s'), 10_000);
      other.once('scores', (data: string) => resolve(`scores ${JSON.stringify(JSON.parse(data))}`));
      other.once('connect_error', (error) => resolve(`refused: ${error.message}`));
    }).finally(() => {
      clearTimeout(timer);
      other.close();
    });
    expect(seen).toBe('scores {"a":0,"b":0}');

    const accepted = flood.filter((r) => r.status === 200);
    expect(accepted).toHaveLength(share);
    for (const r of flood.filter((r) => r.status !== 200)) {
      expect(r.status).toBe(403);
      expect(JSON.parse(r.body).message).toBe(`too many live clients from this address: at most ${share}`);
    }

    // A session that ends gives its place back to its address.
    const sid = (JSON.parse(accepted[0]!.body.slice(1)) as { sid: string }).sid;
    expect(
      (await send(`${t.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '1' })).status,
    ).toBe(200);
    await waitUntil(async () => (await handshake('127.0.0.1')).status === 200, { what: "a handshake once one of the address's sessions ended" });
  });
});

describe('the sticky balancer of an app with two edges', () => {
  let app: AppProcess;
  let db: { url: string; drop(): Promise<void> };
  beforeAll(async () => {
    db = await createTestDatabase(process.env.DATABASE_URL!);
    app = await appProcess({ env: { GATEWAY_WORKERS: '2', DATABASE_URL: db.url } });
    await app.start();
  }, 90_000);
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  // Break it catches: the primary waiting for a connection's first bytes for ever, so silent connections hold its file descriptors.
  it("closes a connection to the primary's port that sends nothing, within its first-bytes timeout", async () => {
    const socket = connect(app.port, '127.0.0.1');
    socket.on('error', () => {});
    const opened = Date.now();
    const closed = new Promise<number>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`still open after ${FIRST_BYTES_TIMEOUT_MS + 5_000} ms`)), FIRST_BYTES_TIMEOUT_MS + 5_000);
      socket.once('close', () => {
        clearTimeout(deadline);
        resolve(Date.now() - opened);
      });
    });
    // Meanwhile the port serves requests that do speak.
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
    const after = await closed.finally(() => socket.destroy());
    expect(after).toBeGreaterThanOrEqual(FIRST_BYTES_TIMEOUT_MS - 100);
  }, 30_000);
});
