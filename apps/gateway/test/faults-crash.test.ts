import { execFileSync } from 'node:child_process';
import { hostname } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase, startPrivateRedis, waitUntil, type RestartableRedis } from '@platform/test-services';
import { createQueue, type Queue } from '@platform/queue';
import { startTestGateway, type TestGateway } from './harness.js';
import {
  acceptedAtLeast,
  callState,
  childGateway,
  compareWithTable,
  endBackends,
  expectedVotes,
  heldInRedisQueue,
  heldInSqlQueue,
  heldMidInsert,
  insertsWaitingOnVotes,
  laterVotesFor,
  lockVotes,
  report,
  steadyVotes,
  votesOf,
  voteAgain,
  waitForAllRecorded,
  waitForRedelivery,
  type ChildGateway,
  type HeldCall,
} from './faults.js';

/** The processes the given process started (its function processes). */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
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

/** When every vote of `votes` is in the table (ms since the epoch), or Infinity after `timeoutMs`. */
async function recordedAt(databaseUrl: string, votes: Map<string, 'a' | 'b'>, timeoutMs: number): Promise<number> {
  return waitUntil(async () => (await compareWithTable(databaseUrl, votes)).missing.length === 0 && Date.now(), {
    timeoutMs,
    intervalMs: 100,
  }).catch(() => Infinity);
}

describe('function processes killed in the middle of calls', () => {
  let t: TestGateway | undefined;
  let probe: pg.Pool | undefined;
  afterAll(async () => {
    await probe?.end();
    await t?.close();
  });

  it('redelivers their calls and counts each vote once', { timeout: 60_000 }, async () => {
    // Break it catches: a call whose invocation failed acknowledged anyway (ack whatever the outcome); also an old vote redelivered over a later one (upsert ignoring seq).
    // Retries wait this long: the held voters' second votes are recorded before their first votes come back.
    const retryBackoffMs = 5_000;
    t = await startTestGateway({ queueOptions: { maxAttempts: 10, retryBackoffMs, onError: () => {} } });
    probe = new pg.Pool({ connectionString: t.databaseUrl, max: 2 });
    const recordVote = t.gateway.pools.get('record-vote')!;
    const pidsOf = (name: string) =>
      t!.gateway.platform
        .snapshot()
        .functions.find((f) => f.name === name)!
        .instances.flatMap((i) => (i.pid ? [i.pid] : []));
    const failures: Record<string, number> = {};
    let lastRecorded = 0;
    for (const pool of t.gateway.pools.values()) {
      pool.on('callFinished', (e) => {
        if (e.status >= 500) failures[`${e.function} ${e.status}`] = (failures[`${e.function} ${e.status}`] ?? 0) + 1;
        if (e.function === 'record-vote' && e.status < 300) lastRecorded = Date.now();
      });
    }
    const load = steadyVotes(() => t!.url, { perSecond: 80 });
    await acceptedAtLeast(load.summary, 50);
    await waitUntil(() => pidsOf('record-vote').length > 0, { what: 'a record-vote process' });
    const release = await lockVotes(t.databaseUrl);
    // The calls the kill lands on: every record-vote call in flight waits inside PostgreSQL.
    const { held, waiting } = await heldMidInsert(probe, `calls-${new URL(t.url).port}`, () => recordVote.status().inFlight);
    const inFlightAtKill = recordVote.status().inFlight;
    // Their voters get their answers (queued means accepted), to vote again later as the same voters.
    await waitUntil(() => [...votesOf(held).keys()].every((v) => load.summary.cookies?.has(v)), { timeoutMs: 2_000 }).catch(() => undefined);
    const acceptedAtKill = load.summary.accepted.size;
    const killed = { 'record-vote': pidsOf('record-vote'), vote: pidsOf('vote') };
    const killedAt = Date.now();
    for (const pid of [...killed['record-vote'], ...killed.vote]) process.kill(pid, 'SIGKILL');
    // The gateway sees the held calls fail before their statements are ended: the kill alone fails them.
    await waitUntil(
      () =>
        held.every((h) => {
          const s = t!.gateway.calls.get(h.callId);
          return s && (s.attempts >= 2 || (s.status === 'queued' && s.error));
        }),
      { timeoutMs: 5_000, what: 'the gateway to see the held calls fail' },
    ).catch(() => undefined);
    const ended = await endBackends(probe, waiting);
    await release();
    const releasedAt = Date.now();
    // Once new record-vote and vote processes serve, half the held voters vote again, before their first votes come back.
    await waitUntil(() => lastRecorded > releasedAt, { timeoutMs: 20_000, what: 'record-vote to record again' });
    await acceptedAtLeast(load.summary, acceptedAtKill + 10);
    const later = laterVotesFor(held, load.summary);
    const again = await voteAgain(t.url, later);
    const laterRecordedAt = await recordedAt(t.databaseUrl, again.accepted, 20_000);
    const redelivery = await waitForRedelivery(held, (callId) => t!.gateway.calls.get(callId), 20_000);
    // The load goes on a while after the redelivery.
    await acceptedAtLeast(load.summary, load.summary.accepted.size + 40);
    const summary = await load.stop();
    const expected = expectedVotes(summary.accepted, held, again.accepted);
    const table = await waitForAllRecorded(t.databaseUrl, expected, 15_000);
    await waitUntil(async () => (await t!.queue.depth()) === 0, { timeoutMs: 10_000, intervalMs: 100 }).catch(() => undefined);
    const depth = await t.queue.depth();
    const dead = await t.queue.deadLetters();
    report([
      'record-vote and vote processes killed (SIGKILL) while record-vote calls were blocked mid-INSERT:',
      ['killed pids', killed],
      ['record-vote calls in flight at the kill', inFlightAtKill],
      ['their statements waiting in PostgreSQL / ended after the kill', `${waiting.length} / ${ended}`],
      ['queued calls held by the killed processes', held.length],
      ['of them delivered again (attempt >= 2) and acknowledged', redelivery.redelivered.length],
      ['their status at the gateway', redelivery.statuses],
      ['not delivered again', redelivery.notRedelivered],
      ['failed invocations seen by the gateway', failures],
      ['voters of the held calls / voting again / accepted', `${votesOf(held).size} / ${later.length} / ${again.accepted.size}`],
      ['second votes refused', again.refused],
      ['second votes recorded, ms before the first could come back', killedAt + retryBackoffMs - laterRecordedAt],
      ['votes sent', summary.sent],
      ['accepted (200)', summary.accepted.size],
      ['refused, by status', summary.rejected],
      ['unanswered', summary.unanswered],
      ['rows in votes', table.rows],
      ['expected votes (accepted, held, second) missing or different', table.missing.length],
      ['queue depth at the end', depth],
      ['dead letters', dead.length],
    ]);
    expect(killed['record-vote'].length).toBeGreaterThan(0);
    expect(inFlightAtKill).toBeGreaterThan(0);
    expect(held.length).toBeGreaterThan(0);
    // Each held call's statement was ended: only a redelivery can record its votes.
    expect(ended).toBe(waiting.length);
    expect(failures['record-vote 502']).toBeGreaterThan(0);
    expect(redelivery.notRedelivered).toEqual([]);
    expect(again.refused).toEqual({});
    expect(again.accepted.size).toBeGreaterThan(0);
    // The second votes were in before the first ones could come back: a redelivery must not undo them.
    expect(laterRecordedAt).toBeLessThan(killedAt + retryBackoffMs);
    expect(table.missing).toEqual([]);
    expect(depth).toBe(0);
    expect(dead).toEqual([]);
  });
});

describe.each([
  ['queue on PostgreSQL (the embedded default)', false],
  ['queue on Redis (the compose stack)', true],
])('the gateway killed (SIGKILL) and restarted under load, %s', (_label, onRedis) => {
  let app: ChildGateway | undefined;
  let db: { url: string; drop(): Promise<void> } | undefined;
  let probe: pg.Pool | undefined;
  let redis: RestartableRedis | undefined;
  let redisQueue: Queue | undefined;
  afterAll(async () => {
    await app?.close();
    await probe?.end();
    await db?.drop();
    await redisQueue?.close();
    await redis?.stop();
  });

  it('loses nothing it accepted: calls it held are redelivered after the restart', { timeout: 90_000 }, async () => {
    // Break it catches: deliveries of a dead consumer never taken back after the visibility timeout (no reclaim); also acking on delivery, before the call ran.
    db = await createTestDatabase(process.env.DATABASE_URL!);
    probe = new pg.Pool({ connectionString: db.url, max: 2 });
    redis = onRedis ? await startPrivateRedis({ appendonly: true }) : undefined;
    // The app's queue (default name), seen from here to read its depth.
    redisQueue = redis ? await createQueue(redis.url, { onError: () => {} }) : undefined;
    const queueDepth = async () => (redisQueue ? redisQueue.depth() : sqlQueueDepth(db!.url));
    // The visibility timeout is how long calls held by the dead gateway wait; a short one keeps the test short.
    const visibilityMs = 15_000;
    app = await childGateway({
      DATABASE_URL: db.url,
      QUEUE_VISIBILITY_SECONDS: String(visibilityMs / 1_000),
      ...(redis ? { QUEUE_URL: redis.url, EVENTS_URL: redis.url } : {}),
    });
    await app.start();
    const load = steadyVotes(() => app!.url, { perSecond: 80 });
    await acceptedAtLeast(load.summary, 50);
    const release = await lockVotes(db.url);
    // Calls held mid-INSERT, and the worker taking no more: the same statements wait at two looks.
    let previous = '';
    await waitUntil(
      async () => {
        const waiting = (await insertsWaitingOnVotes(probe!)).join();
        const settled = waiting !== '' && waiting === previous;
        previous = waiting;
        return settled;
      },
      { timeoutMs: 8_000, intervalMs: 150, what: 'record-vote calls blocked mid-INSERT' },
    );
    const oldPid = app.pid()!;
    const functionPids = childrenOf(oldPid);
    const acceptedAtKill = load.summary.accepted.size;
    await app.signal('SIGKILL');
    const killedAt = Date.now();
    // Exactly what the dead gateway's consumer had delivered and not acknowledged.
    const consumer = `${hostname()}-${oldPid}`;
    const held: HeldCall[] = redis ? await heldInRedisQueue(redis.url, 'calls', consumer, visibilityMs) : await heldInSqlQueue(probe, 'calls', consumer);
    // Its function processes finish their calls and exit on their own; the statements of those
    // calls are ended, so that only a redelivery can record the held votes.
    let ended = 0;
    const orphans = await waitUntil(
      async () => {
        ended += await endBackends(probe!, await insertsWaitingOnVotes(probe!));
        return functionPids.some(alive) ? undefined : [];
      },
      { timeoutMs: 15_000, intervalMs: 100, what: 'function processes of the killed gateway to exit' },
    ).catch(() => functionPids.filter(alive));
    const exitedMs = Date.now() - killedAt;
    await release();
    await app.start();
    const downMs = Date.now() - killedAt;
    // Half the held voters vote again through the new gateway, before their first votes can come back.
    const later = laterVotesFor(held, load.summary);
    const again = await voteAgain(app.url, later);
    const laterRecordedAt = await recordedAt(db.url, again.accepted, 20_000);
    const redeliverableAt = Math.min(...held.map((h) => h.redeliverableAt));
    const redelivery = await waitForRedelivery(held, (callId) => callState(app!.url, callId), visibilityMs + 15_000);
    await acceptedAtLeast(load.summary, acceptedAtKill + 50);
    const summary = await load.stop();
    const waitStarted = Date.now();
    const table = await waitForAllRecorded(db.url, expectedVotes(summary.accepted, held, again.accepted), 20_000);
    const drained = await waitUntil(async () => (await queueDepth()) === 0, { timeoutMs: 20_000, intervalMs: 250 }).catch(() => false);
    const drainedMs = Date.now() - waitStarted;
    report([
      `gateway (pid ${oldPid}, queue on ${onRedis ? 'Redis' : 'PostgreSQL'}) killed with SIGKILL while record-vote calls were blocked, restarted after ${downMs} ms:`,
      ['votes sent', summary.sent],
      ['accepted (200)', summary.accepted.size],
      ['accepted before the kill', acceptedAtKill],
      ['refused, by status', summary.rejected],
      ['unanswered (gateway down)', summary.unanswered],
      ['queued calls held by the dead gateway', held.length],
      ['their statements ended after the kill', ended],
      ['of them delivered again (attempt >= 2) and acknowledged', redelivery.redelivered.length],
      ['their status at the gateway', redelivery.statuses],
      ['not delivered again', redelivery.notRedelivered],
      ['voters of the held calls / voting again / accepted', `${votesOf(held).size} / ${later.length} / ${again.accepted.size}`],
      ['second votes refused', again.refused],
      ['second votes recorded, ms before the first could come back', Math.round(redeliverableAt - laterRecordedAt)],
      ['rows in votes', table.rows],
      ['expected votes (accepted, held, second) missing or different', table.missing.length],
      ['queue drained after the load, ms', drained ? drainedMs : 'not drained'],
      ['function processes of the killed gateway', functionPids],
      ['of them left running', orphans],
      ['all exited after the kill, ms', orphans.length ? 'no' : exitedMs],
    ]);
    expect(acceptedAtKill).toBeGreaterThanOrEqual(50);
    expect(held.length).toBeGreaterThan(0);
    expect(ended).toBeGreaterThan(0);
    expect(redelivery.notRedelivered).toEqual([]);
    expect(again.refused).toEqual({});
    expect(again.accepted.size).toBeGreaterThan(0);
    // The second votes were in before the first ones could come back: a redelivery must not undo them.
    expect(laterRecordedAt).toBeLessThan(redeliverableAt);
    expect(table.missing).toEqual([]);
    expect(drained).toBe(true);
    expect(functionPids.length).toBeGreaterThan(0);
    expect(orphans).toEqual([]);
  });
});
