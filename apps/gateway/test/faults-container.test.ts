import Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { startPostgres, waitUntil, type PostgresServer } from '@platform/test-services';
import { LABELS } from '@platform/core/labels';
import { MANAGED_LABEL } from '@platform/core/runtimes/docker';
import { startTestGateway, type TestGateway } from './harness.js';
import { prepareDocker } from './docker-network.js';
import {
  acceptedAtLeast,
  compareWithTable,
  endBackends,
  expectedVotes,
  heldMidInsert,
  laterVotesFor,
  lockVotes,
  report,
  steadyVotes,
  votesOf,
  voteAgain,
  waitForAllRecorded,
  waitForRedelivery,
} from './faults.js';

// The docker runtime: function containers killed (docker kill) in the middle of calls, under a
// steady load of votes. Calls held by a killed record-vote container are redelivered to a new
// one and each vote is counted once.
const docker = new Docker();
let postgres: PostgresServer | undefined;
let t: TestGateway | undefined;
let probe: pg.Pool | undefined;
// Retries wait this long: the held voters' second votes are recorded (new containers started
// meanwhile) before their first votes come back.
const retryBackoffMs = 8_000;
beforeAll(async () => {
  const network = await prepareDocker();
  postgres = await startPostgres({ listen: [network.hostAddress] });
  t = await startTestGateway({
    databaseServer: postgres.url,
    runtime: 'docker',
    docker: network,
    queueOptions: { maxAttempts: 10, retryBackoffMs, onError: () => {} },
  });
  probe = new pg.Pool({ connectionString: t.databaseUrl, max: 2 });
}, 180_000);
afterAll(async () => {
  await probe?.end();
  await t?.close();
  await postgres?.stop();
});

it('redelivers the calls of killed containers and counts each vote once', { timeout: 90_000 }, async () => {
  // Break it catches: a call whose invocation failed acknowledged anyway (ack whatever the outcome); also an old vote redelivered over a later one (upsert ignoring seq).
  const owner = `test-${new URL(t!.url).port}`;
  const containers = async (fn: string) =>
    (await docker.listContainers({ filters: { label: [`${MANAGED_LABEL}=${owner}`, `${LABELS.function}=${fn}`] } })).map((c) => c.Id);
  const recordVote = t!.gateway.pools.get('record-vote')!;
  const failures: Record<string, number> = {};
  let lastRecorded = 0;
  for (const pool of t!.gateway.pools.values()) {
    pool.on('callFinished', (e) => {
      if (e.status >= 500) failures[`${e.function} ${e.status}`] = (failures[`${e.function} ${e.status}`] ?? 0) + 1;
      if (e.function === 'record-vote' && e.status < 300) lastRecorded = Date.now();
    });
  }
  const load = steadyVotes(() => t!.url, { perSecond: 40 });
  await waitUntil(async () => (await containers('record-vote')).length > 0, { timeoutMs: 20_000, what: 'a record-vote container' });
  await acceptedAtLeast(load.summary, 40);
  // Hold record-vote calls mid-INSERT so the kill lands in the middle of calls.
  const release = await lockVotes(t!.databaseUrl);
  const { held, waiting } = await heldMidInsert(probe!, `calls-${new URL(t!.url).port}`, () => recordVote.status().inFlight);
  const inFlightAtKill = recordVote.status().inFlight;
  await waitUntil(() => [...votesOf(held).keys()].every((v) => load.summary.cookies?.has(v)), { timeoutMs: 2_000 }).catch(() => undefined);
  const acceptedAtKill = load.summary.accepted.size;
  const killed = { 'record-vote': await containers('record-vote'), vote: await containers('vote') };
  const killedAt = Date.now();
  await Promise.all(
    [...killed['record-vote'], ...killed.vote].map((id) =>
      docker
        .getContainer(id)
        .kill()
        .catch(() => {}),
    ),
  );
  // The gateway sees the held calls fail before their statements are ended: the kill alone fails them.
  await waitUntil(
    () =>
      held.every((h) => {
        const s = t!.gateway.calls.get(h.callId);
        return s && (s.attempts >= 2 || (s.status === 'queued' && s.error));
      }),
    { timeoutMs: 5_000, what: 'the gateway to see the held calls fail' },
  ).catch(() => undefined);
  // PostgreSQL does not notice the dead containers while their statements wait: end them, so
  // that only a redelivery can record the held votes.
  const ended = await endBackends(probe!, waiting);
  await release();
  const releasedAt = Date.now();
  // Once new record-vote and vote containers serve, half the held voters vote again, before their first votes come back.
  await waitUntil(() => lastRecorded > releasedAt, { timeoutMs: 30_000, what: 'record-vote to record again' });
  await acceptedAtLeast(load.summary, acceptedAtKill + 10);
  const later = laterVotesFor(held, load.summary);
  const again = await voteAgain(t!.url, later);
  const laterRecordedAt = await waitUntil(async () => (await compareWithTable(t!.databaseUrl, again.accepted)).missing.length === 0 && Date.now(), {
    timeoutMs: 20_000,
    intervalMs: 100,
  }).catch(() => Infinity);
  const redelivery = await waitForRedelivery(held, (callId) => t!.gateway.calls.get(callId), 30_000);
  // The load goes on a while after the redelivery.
  await acceptedAtLeast(load.summary, load.summary.accepted.size + 20);
  const summary = await load.stop();
  const waitStarted = Date.now();
  const table = await waitForAllRecorded(t!.databaseUrl, expectedVotes(summary.accepted, held, again.accepted), 20_000);
  const recordedMs = Date.now() - waitStarted;
  await waitUntil(async () => (await t!.queue.depth()) === 0, { timeoutMs: 10_000, intervalMs: 100 }).catch(() => undefined);
  const depth = await t!.queue.depth();
  const dead = await t!.queue.deadLetters();
  report([
    'record-vote and vote containers killed (docker kill) while record-vote calls were blocked mid-INSERT:',
    ['killed containers', { 'record-vote': killed['record-vote'].length, vote: killed.vote.length }],
    ['record-vote calls in flight at the kill', inFlightAtKill],
    ['their statements waiting in PostgreSQL / ended after the kill', `${waiting.length} / ${ended}`],
    ['queued calls held by the killed containers', held.length],
    ['of them delivered again (attempt >= 2) and acknowledged', redelivery.redelivered.length],
    ['their status at the gateway', redelivery.statuses],
    ['not delivered again', redelivery.notRedelivered],
    ['failed invocations seen by the gateway', failures],
    ['voters of the held calls / voting again / accepted', `${votesOf(held).size} / ${later.length} / ${again.accepted.size}`],
    ['second votes refused', again.refused],
    ['second votes recorded, ms before the first could come back', killedAt + retryBackoffMs - laterRecordedAt],
    ['votes sent', summary.sent],
    ['accepted (200)', summary.accepted.size],
    ['accepted before the kill', acceptedAtKill],
    ['refused, by status', summary.rejected],
    ['unanswered', summary.unanswered],
    ['rows in votes', table.rows],
    ['expected votes (accepted, held, second) missing or different', table.missing.length],
    ['all recorded after the load, ms', recordedMs],
    ['queue depth at the end', depth],
    ['dead letters', dead.map((d) => `${d.attempt} attempts: ${d.error.slice(0, 120)}`)],
  ]);
  expect(killed['record-vote'].length).toBeGreaterThan(0);
  expect(inFlightAtKill).toBeGreaterThan(0);
  expect(held.length).toBeGreaterThan(0);
  // Each held call's statement was ended: only a redelivery can record its votes.
  expect(ended).toBe(waiting.length);
  expect(failures['record-vote 502']).toBeGreaterThan(0);
  expect(redelivery.notRedelivered).toEqual([]);
  expect(acceptedAtKill).toBeGreaterThanOrEqual(40);
  expect(summary.accepted.size).toBeGreaterThan(acceptedAtKill);
  expect(again.refused).toEqual({});
  expect(again.accepted.size).toBeGreaterThan(0);
  // The second votes were in before the first ones could come back: a redelivery must not undo them.
  expect(laterRecordedAt).toBeLessThan(killedAt + retryBackoffMs);
  expect(table.missing).toEqual([]);
  expect(depth).toBe(0);
  expect(dead).toEqual([]);
});
