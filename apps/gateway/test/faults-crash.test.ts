import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase, startPrivateRedis, waitUntil, type RestartableRedis } from '@voting/test-services';
import { createQueue, type Queue } from '@voting/queue';
import { startTestGateway, type TestGateway } from './harness.js';
import { acceptedAtLeast, childGateway, report, sleep, steadyVotes, waitForAllRecorded, type ChildGateway } from './faults.js';

/**
 * Holds an exclusive lock on `votes` until released, so `record-vote` calls block in the middle
 * of their INSERT: a kill then lands mid-call for sure.
 */
async function lockVotes(databaseUrl: string): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE votes IN EXCLUSIVE MODE');
  return async () => {
    await client.query('COMMIT');
    await client.end();
  };
}

/** The processes the given process started (its function processes). */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function sqlQueueDepth(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM fn_queue')).rows[0]!.n;
  } finally {
    await client.end();
  }
}

describe('function processes killed in the middle of calls', () => {
  let t: TestGateway | undefined;
  afterAll(async () => t?.close());

  it('redelivers their calls and counts each vote once', { timeout: 60_000 }, async () => {
    t = await startTestGateway({ queueOptions: { maxAttempts: 10, retryBackoffMs: 500, onError: () => {} } });
    const pidsOf = (name: string) =>
      t!.gateway.platform.snapshot().functions.find((f) => f.name === name)!.instances.flatMap((i) => (i.pid ? [i.pid] : []));
    const failures: Record<string, number> = {};
    for (const pool of t.gateway.pools.values()) {
      pool.on('callFinished', (e) => {
        if (e.status >= 500) failures[`${e.function} ${e.status}`] = (failures[`${e.function} ${e.status}`] ?? 0) + 1;
      });
    }
    const load = steadyVotes(() => t!.url, { perSecond: 80 });
    await acceptedAtLeast(load.summary, 50);
    await waitUntil(() => pidsOf('record-vote').length > 0, { what: 'a record-vote process' });
    const release = await lockVotes(t.databaseUrl);
    await waitUntil(() => t!.gateway.pools.get('record-vote')!.status().inFlight > 0, { what: 'record-vote calls in flight' });
    await sleep(500);
    const inFlightAtKill = t.gateway.pools.get('record-vote')!.status().inFlight;
    const killed = { 'record-vote': pidsOf('record-vote'), vote: pidsOf('vote') };
    for (const pid of [...killed['record-vote'], ...killed.vote]) process.kill(pid, 'SIGKILL');
    await sleep(500);
    await release();
    await sleep(2_500);
    const summary = await load.stop();
    const table = await waitForAllRecorded(t.databaseUrl, summary.accepted, 30_000);
    const dead = await t.queue.deadLetters();
    report([
      'record-vote and vote processes killed (SIGKILL) while record-vote calls were blocked mid-INSERT:',
      ['killed pids', killed],
      ['record-vote calls in flight at the kill', inFlightAtKill],
      ['failed invocations seen by the gateway', failures],
      ['votes sent', summary.sent],
      ['accepted (200)', summary.accepted.size],
      ['refused, by status', summary.rejected],
      ['unanswered', summary.unanswered],
      ['rows in votes', table.rows],
      ['accepted but not recorded', table.missing.length],
      ['dead letters', dead.length],
    ]);
    expect(killed['record-vote'].length).toBeGreaterThan(0);
    expect(inFlightAtKill).toBeGreaterThan(0);
    expect(failures['record-vote 502']).toBeGreaterThan(0);
    expect(table.missing).toEqual([]);
    expect(dead).toEqual([]);
    // Once per voter: never more rows than votes sent, each accepted voter exactly once.
    expect(table.rows).toBeLessThanOrEqual(summary.sent);
  });
});

describe.each([
  ['queue on PostgreSQL (the embedded default)', false],
  ['queue on Redis (the compose stack)', true],
])('the gateway killed (SIGKILL) and restarted under load, %s', (_label, onRedis) => {
  let app: ChildGateway | undefined;
  let db: { url: string; drop(): Promise<void> } | undefined;
  let redis: RestartableRedis | undefined;
  let redisQueue: Queue | undefined;
  afterAll(async () => {
    await app?.close();
    await db?.drop();
    await redisQueue?.close();
    await redis?.stop();
  });

  it('loses nothing it accepted: calls it held are redelivered after the restart', { timeout: 90_000 }, async () => {
    db = await createTestDatabase(process.env.DATABASE_URL!);
    redis = onRedis ? await startPrivateRedis({ appendonly: true }) : undefined;
    // The app's queue (default name), seen from here to read its depth.
    redisQueue = redis ? await createQueue(redis.url, { onError: () => {} }) : undefined;
    const queueDepth = async () => (redisQueue ? redisQueue.depth() : sqlQueueDepth(db!.url));
    // The visibility timeout is how long calls held by the dead gateway wait; a short one keeps the test short.
    app = await childGateway({
      DATABASE_URL: db.url,
      QUEUE_VISIBILITY_SECONDS: '12',
      ...(redis ? { QUEUE_URL: redis.url, EVENTS_URL: redis.url } : {}),
    });
    await app.start();
    const load = steadyVotes(() => app!.url, { perSecond: 80 });
    await acceptedAtLeast(load.summary, 50);
    const release = await lockVotes(db.url);
    await sleep(1_000);
    const oldPid = app.pid()!;
    const functionPids = childrenOf(oldPid);
    const acceptedAtKill = load.summary.accepted.size;
    await app.signal('SIGKILL');
    const killedAt = Date.now();
    await release();
    await app.start();
    const downMs = Date.now() - killedAt;
    const heldAtRestart = await queueDepth();
    await sleep(2_000);
    const summary = await load.stop();
    const waitStarted = Date.now();
    const table = await waitForAllRecorded(db.url, summary.accepted, 40_000);
    // The calls the dead gateway held come back after the visibility timeout and are settled.
    await waitUntil(async () => (await queueDepth()) === 0, { timeoutMs: 40_000, intervalMs: 250, what: 'the queue to drain' });
    const drainedMs = Date.now() - waitStarted;
    // The function processes of the killed gateway exit on their own: none is left over.
    const orphans = await waitUntil(() => (functionPids.some(alive) ? undefined : []), {
      timeoutMs: 15_000,
      what: 'function processes of the killed gateway to exit',
    }).catch(() => functionPids.filter(alive));
    report([
      `gateway (pid ${oldPid}, queue on ${onRedis ? 'Redis' : 'PostgreSQL'}) killed with SIGKILL while record-vote calls were blocked, restarted after ${downMs} ms:`,
      ['votes sent', summary.sent],
      ['accepted (200)', summary.accepted.size],
      ['accepted before the kill', acceptedAtKill],
      ['refused, by status', summary.rejected],
      ['unanswered (gateway down)', summary.unanswered],
      ['rows in votes', table.rows],
      ['accepted but not recorded', table.missing.length],
      ['queue rows held by the dead gateway at the restart', heldAtRestart],
      ['queue drained after the load, ms', drainedMs],
      ['function processes of the killed gateway', functionPids],
      ['of them left running', orphans],
    ]);
    expect(table.missing).toEqual([]);
    expect(acceptedAtKill).toBeGreaterThanOrEqual(50);
    expect(summary.accepted.size).toBeGreaterThan(acceptedAtKill);
    expect(table.rows).toBeLessThanOrEqual(summary.sent);
    expect(heldAtRestart).toBeGreaterThan(0);
    expect(functionPids.length).toBeGreaterThan(0);
    expect(orphans).toEqual([]);
  });
});
