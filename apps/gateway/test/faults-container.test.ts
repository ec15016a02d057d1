import Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { startPostgres, waitUntil, type PostgresServer } from '@voting/test-services';
import { MANAGED_LABEL } from '../src/runtimes/docker.js';
import { startTestGateway, type TestGateway } from './harness.js';
import { prepareDocker } from './docker-network.js';
import { report, sleep, steadyVotes, waitForAllRecorded } from './faults.js';

// The docker runtime: function containers killed (docker kill) in the middle of calls, under a
// steady load of votes. Calls held by a killed record-vote container are redelivered to a new
// one and each vote is counted once.
const docker = new Docker();
let postgres: PostgresServer | undefined;
let t: TestGateway | undefined;
beforeAll(async () => {
  const network = await prepareDocker();
  postgres = await startPostgres({ listen: [network.hostAddress] });
  t = await startTestGateway({
    databaseServer: postgres.url,
    runtime: 'docker',
    docker: network,
    queueOptions: { maxAttempts: 10, retryBackoffMs: 500, onError: () => {} },
  });
}, 180_000);
afterAll(async () => {
  await t?.close();
  await postgres?.stop();
});

it('redelivers the calls of killed containers and counts each vote once', { timeout: 90_000 }, async () => {
  const owner = `test-${new URL(t!.url).port}`;
  const containers = async (fn: string) =>
    (await docker.listContainers({ filters: { label: [`${MANAGED_LABEL}=${owner}`, `org.voting.function=${fn}`] } })).map((c) => c.Id);
  const failures: Record<string, number> = {};
  for (const pool of t!.gateway.pools.values()) {
    pool.on('callFinished', (e) => {
      if (e.status >= 500) failures[`${e.function} ${e.status}`] = (failures[`${e.function} ${e.status}`] ?? 0) + 1;
    });
  }
  const load = steadyVotes(() => t!.url, { perSecond: 40 });
  await waitUntil(async () => (await containers('record-vote')).length > 0, { timeoutMs: 20_000, what: 'a record-vote container' });
  await sleep(1_000);
  // Hold record-vote calls mid-INSERT so the kill lands in the middle of calls.
  const blocker = new pg.Client({ connectionString: t!.databaseUrl });
  await blocker.connect();
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE votes IN EXCLUSIVE MODE');
  await waitUntil(() => t!.gateway.pools.get('record-vote')!.status().inFlight > 0, { what: 'record-vote calls in flight' });
  await sleep(300);
  const inFlightAtKill = t!.gateway.pools.get('record-vote')!.status().inFlight;
  const killed = { 'record-vote': await containers('record-vote'), vote: await containers('vote') };
  await Promise.all([...killed['record-vote'], ...killed.vote].map((id) => docker.getContainer(id).kill().catch(() => {})));
  await sleep(500);
  await blocker.query('COMMIT');
  await blocker.end();
  await sleep(3_000);
  const summary = await load.stop();
  const waitStarted = Date.now();
  const table = await waitForAllRecorded(t!.databaseUrl, summary.accepted, 60_000);
  const recordedMs = Date.now() - waitStarted;
  const depth = await waitUntil(async () => ((await t!.queue.depth()) === 0 ? 'empty' : undefined), { timeoutMs: 20_000 }).catch(async () => t!.queue.depth());
  const dead = await t!.queue.deadLetters();
  report([
    'record-vote and vote containers killed (docker kill) while record-vote calls were blocked mid-INSERT:',
    ['killed containers', { 'record-vote': killed['record-vote'].length, vote: killed.vote.length }],
    ['record-vote calls in flight at the kill', inFlightAtKill],
    ['failed invocations seen by the gateway', failures],
    ['votes sent', summary.sent],
    ['accepted (200)', summary.accepted.size],
    ['refused, by status', summary.rejected],
    ['unanswered', summary.unanswered],
    ['rows in votes', table.rows],
    ['accepted but not recorded', table.missing.length],
    ['all recorded after the load, ms', recordedMs],
    ['queue', depth],
    ['dead letters', dead.map((d) => `${d.attempt} attempts: ${d.error.slice(0, 120)}`)],
  ]);
  expect(killed['record-vote'].length).toBeGreaterThan(0);
  expect(inFlightAtKill).toBeGreaterThan(0);
  expect(failures['record-vote 502']).toBeGreaterThan(0);
  expect(table.missing).toEqual([]);
  expect(dead).toEqual([]);
  expect(table.rows).toBeLessThanOrEqual(summary.sent);
});
