import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, freePort, waitUntil } from '@platform/test-services';
import { cpuMeter, MemberRegistry, type MemberRegistryOptions } from '../src/cluster/members.js';
import { gatewaysRoutes, type MemberList } from '../src/routes/gateways.js';
import { errorHandler } from '../src/routes/functions.js';
import { migratePlatform } from '../src/store/migrate.js';
import type { AdminAuth } from '../src/auth.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

// The tier's member list on a real PostgreSQL (a database of this file's own), with short
// heartbeats so that members go stale within a second.
const FAST = { heartbeatMs: 100, staleAfterMs: 1_000, forgetAfterMs: 30_000 };

let database: { url: string; drop(): Promise<void> };
let admin: pg.Pool;
const registries: MemberRegistry[] = [];
const proxies: TcpProxy[] = [];
const pools: pg.Pool[] = [];
const servers: Server[] = [];

beforeAll(async () => {
  database = await createTestDatabase(process.env.DATABASE_URL!);
  await migratePlatform(database.url);
  admin = new pg.Pool({ connectionString: database.url, max: 2 });
});
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  await Promise.all(registries.splice(0).map((registry) => registry.close()));
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
  await Promise.all(pools.splice(0).map((pool) => pool.end()));
  await admin.query('DELETE FROM platform_members');
});
afterAll(async () => {
  await admin?.end();
  await database?.drop();
});

function registry(options: Partial<MemberRegistryOptions> = {}): MemberRegistry {
  const made = new MemberRegistry({ database: database.url, ...FAST, ...options });
  registries.push(made);
  return made;
}

/** The test database's URL through a proxy the test can cut. */
async function proxied(): Promise<{ url: string; proxy: TcpProxy }> {
  const url = new URL(database.url);
  const proxy = await startTcpProxy(Number(url.port));
  proxies.push(proxy);
  url.port = String(proxy.port);
  return { url: url.toString(), proxy };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const rowCount = async () => (await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM platform_members')).rows[0]!.n;

describe('MemberRegistry', () => {
  // Break it catches: an edge listed as leader because its leader callback said so, or the list in another order.
  it('lists every member that joined with its role, host, pid, leader and calls in flight, controllers first', async () => {
    const members = registry();
    const edgeA = await members.join({ role: 'edge', host: 'box-a', pid: 10, url: 'http://box-a:8080', details: { zone: 'a' }, inFlight: () => 3 });
    const standby = await members.join({ role: 'controller', host: 'box-c', pid: 30, inFlight: () => 0, leader: () => false });
    const edgeB = await members.join({ role: 'edge', host: 'box-b', pid: 20, inFlight: () => 0, leader: () => true });
    const leading = await members.join({ role: 'controller', host: 'box-c', pid: 31, inFlight: () => 0, leader: () => true });

    expect(edgeA.id).toMatch(/^edge-box-a-10-[0-9a-f]{4}$/);
    expect(leading.id).toMatch(/^controller-box-c-31-[0-9a-f]{4}$/);
    const list = await registry().list();
    expect(list.map((m) => m.id)).toEqual([standby.id, leading.id, edgeA.id, edgeB.id]);
    expect(list.map(({ role, host, pid, leader, inFlight }) => ({ role, host, pid, leader, inFlight }))).toEqual([
      { role: 'controller', host: 'box-c', pid: 30, leader: false, inFlight: 0 },
      { role: 'controller', host: 'box-c', pid: 31, leader: true, inFlight: 0 },
      { role: 'edge', host: 'box-a', pid: 10, leader: false, inFlight: 3 },
      { role: 'edge', host: 'box-b', pid: 20, leader: false, inFlight: 0 },
    ]);
    expect(list[2]).toMatchObject({ url: 'http://box-a:8080', details: { zone: 'a' } });
    for (const member of list) expect(member.lastSeenAt.getTime()).toBeGreaterThanOrEqual(member.startedAt.getTime());
  });

  // Break it catches: a heartbeat that writes only last_seen_at (calls in flight and the lead frozen at join), or that moves startedAt.
  it('refreshes calls in flight, the lead and lastSeenAt at every heartbeat, and keeps startedAt', async () => {
    let inFlight = 0;
    let leader = false;
    const members = registry();
    const { id } = await members.join({ role: 'controller', inFlight: () => inFlight, leader: () => leader });
    const [first] = await members.list();
    expect(first).toMatchObject({ id, inFlight: 0, leader: false, pid: process.pid });
    inFlight = 7;
    leader = true;
    const later = await waitUntil(async () => (await members.list()).find((m) => m.id === id && m.inFlight === 7 && m.leader), {
      what: 'the heartbeat to show 7 calls in flight and the lead',
    });
    expect(later.startedAt).toEqual(first!.startedAt);
    expect(later.lastSeenAt.getTime()).toBeGreaterThan(first!.lastSeenAt.getTime());
    // Its row deleted (forgotten while it was cut off): the next heartbeat writes it again, startedAt unchanged.
    await admin.query('DELETE FROM platform_members WHERE id = $1', [id]);
    const again = await waitUntil(async () => (await members.list()).find((m) => m.id === id), { what: 'the row written again' });
    expect(again.startedAt).toEqual(first!.startedAt);
  });

  // Break it catches: a member left listed forever once its heartbeats stop, or a database outage logged at every failed heartbeat.
  it('drops a member whose heartbeats stop after staleAfterMs, logs the outage once, and lists it again once they resume', async () => {
    const { url, proxy } = await proxied();
    // Short timeouts, so that heartbeats through the cut proxy fail several times a second.
    const cut = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 300, query_timeout: 300 });
    cut.on('error', () => {});
    pools.push(cut);
    const log: string[] = [];
    const member = await registry({ database: cut, log: (message) => log.push(message) }).join({ role: 'edge', inFlight: () => 0 });
    const lister = registry();
    const listed = async () => (await lister.list()).find((m) => m.id === member.id);
    const before = await listed();
    expect(before).toBeDefined();

    proxy.freeze();
    const frozenAt = performance.now();
    expect(await listed()).toBeDefined();
    await waitUntil(async () => !(await listed()), { timeoutMs: 5_000, what: 'the silent member to drop out' });
    expect(performance.now() - frozenAt).toBeGreaterThan(FAST.staleAfterMs - FAST.heartbeatMs - 300);
    await sleep(1_000); // several more failed heartbeats
    expect(log).toEqual([expect.stringMatching(new RegExp(`^member ${member.id}: heartbeat failed`))]);

    proxy.heal();
    const back = await waitUntil(listed, { timeoutMs: 5_000, what: 'the member to be listed again' });
    expect(back.startedAt).toEqual(before!.startedAt);
    await waitUntil(() => log.length === 2, { what: 'the recovery logged' });
    expect(log[1]).toBe(`member ${member.id}: heartbeats written again`);
  });

  // Break it catches: leave() deleting the row while a heartbeat is in flight, which writes it again.
  it('forgets a member at once when it leaves, even with a heartbeat in flight', async () => {
    const members = registry({ heartbeatMs: 1 });
    const stays = await members.join({ role: 'controller', inFlight: () => 0 });
    const gone = await members.join({ role: 'edge', inFlight: () => 0 });
    await gone.leave();
    expect((await members.list()).map((m) => m.id)).toEqual([stays.id]);
    // Many leaves at random points of the heartbeat loop: none leaves its row behind.
    for (let i = 0; i < 30; i++) {
      const member = await members.join({ role: 'edge', inFlight: () => 0 });
      await sleep(Math.random() * 5);
      await member.leave();
    }
    await stays.leave();
    await sleep(100);
    expect(await rowCount()).toBe(0);
  });

  // Break it catches: rows of crashed members piling up for ever (no delete on heartbeat, or none on list).
  it('deletes members not seen for forgetAfterMs, whether a member heartbeats or someone lists', async () => {
    const insert = (id: string, age: string) =>
      admin.query(
        `INSERT INTO platform_members (id, role, host, pid, started_at, last_seen_at) VALUES ($1, 'edge', 'gone', 1, now() - interval '1 hour', now() - $2::interval)`,
        [id, age],
      );
    const ids = async () => (await admin.query<{ id: string }>('SELECT id FROM platform_members ORDER BY id')).rows.map((r) => r.id);
    await insert('edge-old-1', '2 minutes');
    await insert('edge-stale', '10 seconds');
    const members = registry();
    // Only heartbeats, no list: the joined member's first heartbeat deletes the old row.
    const { id } = await members.join({ role: 'edge', inFlight: () => 0 });
    expect(await ids()).toEqual([id, 'edge-stale'].sort());
    await members.close();
    // Only a list, no heartbeat: the list deletes the old row.
    await insert('edge-old-2', '2 minutes');
    const lister = registry();
    expect(await lister.list()).toEqual([]);
    expect(await ids()).toEqual(['edge-stale']);
  });

  // Break it catches: lastSeenAt written with the member's own clock, so a member whose clock is behind looks long gone.
  it("uses the database's clock: a member whose clock is an hour behind is listed like any other", async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() - 3_600_000);
    const members = registry();
    const { id } = await members.join({ role: 'edge', inFlight: () => 0 });
    await sleep(3 * FAST.heartbeatMs);
    const listed = (await members.list()).find((m) => m.id === id);
    expect(listed).toBeDefined();
    const { now } = (await admin.query<{ now: Date }>('SELECT now()')).rows[0]!;
    expect(Math.abs(now.getTime() - listed!.startedAt.getTime())).toBeLessThan(60_000);
  });

  // Break it catches: no listener for errors of idle connections, so a database restart crashes the process.
  it('survives the database dropping its idle connections, and heartbeats again on new ones', async () => {
    const { url, proxy } = await proxied();
    const members = registry({ database: url, log: () => {} });
    const { id } = await members.join({ role: 'edge', inFlight: () => 0 });
    const lastSeen = async () => (await registry().list()).find((m) => m.id === id)?.lastSeenAt.getTime() ?? 0;
    for (let i = 0; i < 5; i++) {
      proxy.dropUpstream();
      await sleep(30);
    }
    const { now } = (await admin.query<{ now: Date }>('SELECT now()')).rows[0]!;
    await waitUntil(async () => (await lastSeen()) > now.getTime(), { timeoutMs: 5_000, what: 'a heartbeat after the drops' });
  });
});

// Break it catches: the meter reporting CPU time since the process started, or in the wrong unit.
it('cpuMeter reports the share of a core used since it was last read', async () => {
  const read = cpuMeter();
  const until = Date.now() + 200;
  while (Date.now() < until); // busy: about one core
  const busy = read();
  expect(busy).toBeGreaterThan(0.5);
  expect(busy).toBeLessThan(1.5);
  await sleep(200); // idle
  expect(read()).toBeLessThan(0.25);
});

describe('GET /system/gateways', () => {
  async function serve(members: MemberList | undefined, auth: AdminAuth = {}): Promise<string> {
    const app = express();
    app.use(gatewaysRoutes({ members, auth }));
    app.use(errorHandler({ error: () => {} }));
    const server = app.listen(0, '127.0.0.1');
    servers.push(server);
    await new Promise((resolve) => server.once('listening', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/system/gateways`;
  }

  // Break it catches: Dates or database column names (last_seen_at) in the answer instead of the documented fields.
  it('answers every live member with exactly the documented fields', async () => {
    const members = registry();
    const controller = await members.join({ role: 'controller', host: 'box-c', pid: 5, inFlight: () => 0, leader: () => true });
    const edge = await members.join({
      role: 'edge',
      host: 'box-e',
      pid: 6,
      url: 'http://box-e',
      details: { secret: 'no' },
      inFlight: () => 2,
      cpu: () => 0.4321,
    });
    const answer = await fetch(await serve(members));
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await answer.json()) as Array<Record<string, unknown>>;
    const iso = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(body).toEqual([
      { id: controller.id, role: 'controller', host: 'box-c', pid: 5, leader: true, startedAt: iso, lastSeenAt: iso, inFlight: 0, cpu: 0 },
      { id: edge.id, role: 'edge', host: 'box-e', pid: 6, leader: false, startedAt: iso, lastSeenAt: iso, inFlight: 2, cpu: 0.43 },
    ]);
  });

  // Break it catches: the route served without the read check when status reads are private.
  it('needs credentials when status reads are private', async () => {
    const url = await serve(registry(), { token: 'secret', readPublic: false });
    const refused = await fetch(url);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ error: expect.stringMatching(/^credentials required/) });
    expect((await fetch(url, { headers: { authorization: 'Bearer secret' } })).status).toBe(200);
  });

  // Break it catches: a database that cannot be read answered as an empty tier (200 []) or as a bare 500.
  it('answers 503 with its reason when the database cannot be read, and 501 without a member list', async () => {
    const nowhere = new URL(database.url);
    nowhere.port = String(await freePort());
    const down = await fetch(await serve(registry({ database: nowhere.toString() })));
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('1');
    expect(await down.json()).toEqual({ error: "the tier's member list cannot be read now" });
    const none = await fetch(await serve(undefined));
    expect(none.status).toBe(501);
    expect(await none.json()).toEqual({ error: "this gateway keeps no list of the tier's members" });
  });
});
