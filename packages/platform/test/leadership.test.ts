import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase, waitUntil } from '@platform/test-services';
import { LEASE_MARGIN_MS, Leadership, SERVER_DROPS_SILENT_CLIENT_MS, lockKey, type LeadershipOptions } from '../src/cluster/leadership.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

// Contenders for the lead on a real PostgreSQL (a database of this file's own: advisory locks are
// per database), the lead sampled every 25 ms: never two at once, through a cut connection, a
// stop, a network partition and a stalled event loop.
interface Contender {
  leadership: Leadership;
  /** Each onChange, with performance.now() when it came. */
  changes: Array<{ leader: boolean; at: number }>;
}

let database: { url: string; drop(): Promise<void> };
let admin: pg.Client;
const contenders: Contender[] = [];
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  database = await createTestDatabase(process.env.DATABASE_URL!);
  admin = new pg.Client({ connectionString: database.url });
  await admin.connect();
});
afterEach(async () => {
  await Promise.all(contenders.splice(0).map((c) => c.leadership.stop()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  await admin?.end();
  await database?.drop();
});

function contender(name: string, options: Partial<LeadershipOptions> = {}): Contender {
  const changes: Contender['changes'] = [];
  const leadership = new Leadership({ databaseUrl: database.url, name, onChange: (leader) => changes.push({ leader, at: performance.now() }), ...options });
  contenders.push({ leadership, changes });
  leadership.start();
  return { leadership, changes };
}

/** How many of `group` lead, every 25 ms until `stop()`, which answers the counts. */
function sampleLeaders(group: Contender[]) {
  const counts: number[] = [];
  const timer = setInterval(() => counts.push(group.filter((c) => c.leadership.isLeader()).length), 25);
  return {
    stop() {
      clearInterval(timer);
      return counts;
    },
  };
}

const leads = (c: Contender, timeoutMs = 5_000) => waitUntil(() => c.leadership.isLeader(), { timeoutMs, what: `${c.leadership.name} to lead` });
const leaderOf = (group: Contender[]) => waitUntil(() => group.find((c) => c.leadership.isLeader()), { timeoutMs: 5_000, what: 'a leader' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** The backend holding the lock of `name`, and the port its client connects from. */
async function lockHolder(name: string): Promise<{ pid: number; clientPort: number }> {
  const key = lockKey(name);
  const { rows } = await admin.query<{ pid: number; client_port: number }>(
    `SELECT l.pid, a.client_port FROM pg_locks l JOIN pg_stat_activity a USING (pid)
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.classid = $1::oid AND l.objid = $2::oid`,
    [String(key >> 32n), String(key & 0xffffffffn)],
  );
  expect(rows).toHaveLength(1);
  return { pid: rows[0]!.pid, clientPort: rows[0]!.client_port };
}

/** The kernel's timer on the server's socket from `serverPort` to `clientPort`: its kind (2: keepalive) and seconds left. */
async function serverSocketTimer(serverPort: number, clientPort: number): Promise<{ kind: number; seconds: number } | undefined> {
  const port = (n: number) => `:${n.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (await readFile(file, 'utf8')).split('\n').slice(1)) {
      const [, local, remote, , , timer] = line.trim().split(/\s+/);
      if (!local?.endsWith(port(serverPort)) || !remote?.endsWith(port(clientPort)) || !timer) continue;
      const [kind, when] = timer.split(':');
      return { kind: Number.parseInt(kind!, 16), seconds: Number.parseInt(when!, 16) / 100 }; // clock ticks of 1/100 s
    }
  }
  return undefined;
}

describe('leadership of the controllers', () => {
  // Break it catches: a lock key that differs between contenders of one name, or a false from
  // pg_try_advisory_lock taken for the lead.
  it('lets exactly one of three contenders lead', async () => {
    const group = [contender('one'), contender('one'), contender('one')];
    await leaderOf(group);
    const samples = sampleLeaders(group);
    await sleep(2_500);
    const counts = samples.stop();
    expect(counts.length).toBeGreaterThan(50);
    expect(new Set(counts)).toEqual(new Set([1]));
    expect(group.filter((c) => c.changes.length > 0)).toHaveLength(1);
  });

  // Break it catches: a connection error or end that does not step the leader down at once (it
  // would lead on, its connection gone, until its lease ran out).
  it('steps down at once when its connection is cut, and a standby takes over within seconds', async () => {
    const group = [contender('cut'), contender('cut')];
    const leader = await leaderOf(group);
    const standby = group.find((c) => c !== leader)!;
    const samples = sampleLeaders(group);
    await sleep(200);
    const { pid } = await lockHolder('cut');
    const cutAt = performance.now();
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    // The standby tries every interval; the old leader waits one before it connects again, so the standby wins.
    await leads(standby, 3_000);
    const tookOverMs = performance.now() - cutAt;
    await sleep(500);
    const counts = samples.stop();
    expect(leader.changes.map((c) => c.leader)).toEqual([true, false]);
    expect(leader.changes[1]!.at - cutAt).toBeLessThan(500);
    expect(Math.max(...counts)).toBeLessThanOrEqual(1);
    expect(tookOverMs).toBeLessThan(3_000);
  });

  // Break it catches: a stop() that does not step down before anything else, or leaves the
  // connection (and the lock) to be dropped later.
  it('hands the lead over promptly on stop()', async () => {
    const group = [contender('stop'), contender('stop')];
    const leader = await leaderOf(group);
    const standby = group.find((c) => c !== leader)!;
    const samples = sampleLeaders(group);
    await sleep(200);
    const stopAt = performance.now();
    const stopping = leader.leadership.stop();
    expect(leader.leadership.isLeader()).toBe(false);
    await stopping;
    await leads(standby, 2_000);
    const handedOverMs = performance.now() - stopAt;
    await sleep(500);
    expect(Math.max(...samples.stop())).toBeLessThanOrEqual(1);
    expect(handedOverMs).toBeLessThan(2_000);
  });

  // Break it catches: a leader check that is not bounded in time (a hung connection would keep
  // the leader leading, and never connecting again).
  it('steps a leader cut off by the network down before PostgreSQL frees its lock, and has it back as a standby', { timeout: 25_000 }, async () => {
    const server = new URL(database.url);
    const proxy = await startTcpProxy(Number(server.port), server.hostname);
    proxies.push(proxy);
    const throughProxy = new URL(database.url);
    throughProxy.host = `127.0.0.1:${proxy.port}`;
    const cutOff = contender('partition', { databaseUrl: throughProxy.toString() });
    await leads(cutOff);
    const direct = contender('partition');
    await sleep(1_500);
    expect(direct.leadership.isLeader()).toBe(false);
    const samples = sampleLeaders([cutOff, direct]);

    proxy.freeze();
    const frozenAt = performance.now();
    await waitUntil(() => !cutOff.leadership.isLeader(), { timeoutMs: 5_000, what: 'the cut-off leader to step down' });
    // What PostgreSQL's keepalive does to the session it no longer hears from, no sooner than this.
    await sleep(frozenAt + SERVER_DROPS_SILENT_CLIENT_MS - performance.now());
    proxy.dropUpstream();
    await leads(direct);
    const steppedDown = cutOff.changes.find((c) => !c.leader);
    const elected = direct.changes.find((c) => c.leader)!;
    expect(steppedDown).toBeDefined();
    expect(steppedDown!.at - frozenAt).toBeLessThan(cutOff.leadership.leaseMs + 500);
    expect(steppedDown!.at).toBeLessThan(elected.at);

    proxy.heal();
    await sleep(2_500); // the cut-off one connects again and tries for the lock
    expect(Math.max(...samples.stop())).toBeLessThanOrEqual(1);
    expect(direct.leadership.isLeader()).toBe(true);
    expect(cutOff.changes.map((c) => c.leader)).toEqual([true, false]);
    // A live standby: it takes over when the other stops.
    await direct.leadership.stop();
    await leads(cutOff, 3_000);
  });

  // Break it catches: isLeader() answering from a flag alone, without the age of the last confirmation.
  it('is not leader once its lease ran out, before any timer or socket event could tell it', async () => {
    const stalled = contender('stall', { checkIntervalMs: 100, checkTimeoutMs: 200 });
    await leads(stalled);
    const until = performance.now() + stalled.leadership.leaseMs + 100;
    while (performance.now() < until) {
      // the event loop stalls: no timer, no answer from PostgreSQL runs
    }
    expect(stalled.leadership.isLeader()).toBe(false);
    await leads(stalled);
  });

  // Break it catches: the keepalive settings not sent on the connection (PostgreSQL would keep a
  // vanished leader's lock for hours), or check settings accepted that let a lease outlast them.
  it('has PostgreSQL drop a silent leader within seconds, after its lease ran out', async () => {
    expect(() => new Leadership({ databaseUrl: database.url, name: 'slow', checkIntervalMs: 2_000, checkTimeoutMs: 2_500 })).toThrow(RangeError);
    expect(new Leadership({ databaseUrl: database.url, name: 'defaults' }).leaseMs + LEASE_MARGIN_MS).toBeLessThanOrEqual(SERVER_DROPS_SILENT_CLIENT_MS);
    const leader = contender('keepalive');
    await leads(leader);
    const { clientPort } = await lockHolder('keepalive');
    const timer = await waitUntil(
      async () => {
        const found = await serverSocketTimer(Number(new URL(database.url).port), clientPort);
        return found?.kind === 2 ? found : undefined;
      },
      { timeoutMs: 3_000, what: "the keepalive timer of the server's socket" },
    );
    expect(timer.seconds).toBeLessThanOrEqual(2);
  });
});
