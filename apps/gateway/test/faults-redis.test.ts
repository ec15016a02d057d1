import { afterAll, expect, it } from 'vitest';
import { startPrivatePostgres, startPrivateRedis, type RestartablePostgres, type RestartableRedis } from '@voting/test-services';
import { startTestGateway, type TestGateway } from './harness.js';
import { acceptedAtLeast, report, sleep, steadyVotes, waitForAllRecorded } from './faults.js';

// Redis (queue and events, as in the compose stack) killed under a steady load of votes and
// started again after 2 s. It keeps an append-only file fsynced every second, as the compose
// stack's Redis does: everything it acknowledged is in the file (written before the reply),
// so every accepted vote is recorded after the restart. So that many accepted votes are only
// in Redis when it dies, the database is stopped from 1 s before the kill until after the
// restart: recording fails meanwhile and the votes wait in the queue (or its retries).
let redis: RestartableRedis | undefined;
let postgres: RestartablePostgres | undefined;
let t: TestGateway | undefined;
afterAll(async () => {
  await t?.close();
  await redis?.stop();
  await postgres?.stop();
});

it('records every accepted vote after Redis is killed and restarted', { timeout: 60_000 }, async () => {
  redis = await startPrivateRedis({ appendonly: true, appendfsync: 'everysec' });
  postgres = await startPrivatePostgres();
  t = await startTestGateway({
    queueUrl: redis.url,
    eventsUrl: redis.url,
    databaseServer: postgres.url,
    // As the app's defaults (QUEUE_MAX_ATTEMPTS, QUEUE_RETRY_BACKOFF_MS); connection errors are expected here.
    queueOptions: { maxAttempts: 10, retryBackoffMs: 500, onError: () => {} },
  });
  const load = steadyVotes(() => t!.url, { perSecond: 80 });
  await acceptedAtLeast(load.summary, 100);
  await postgres.pause();
  await sleep(1_000);
  const beforeKill = load.summary.accepted.size;
  const depthAtKill = await t.queue.depth();
  await redis.kill();
  const killedAt = Date.now();
  await sleep(2_000);
  await redis.start();
  const downMs = Date.now() - killedAt;
  const depthAfterRestart = await t.queue.depth();
  await postgres.resume();
  await sleep(3_000);
  const summary = await load.stop();
  const waitStarted = Date.now();
  const table = await waitForAllRecorded(t.databaseUrl, summary.accepted, 30_000);
  const dead = await t.queue.deadLetters();
  report([
    `Redis killed (SIGKILL) and restarted after ${downMs} ms under load (append-only file, fsync every second):`,
    ['votes sent', summary.sent],
    ['accepted (200)', summary.accepted.size],
    ['accepted before the kill', beforeKill],
    ['queue depth at the kill (votes only in Redis)', depthAtKill],
    ['queue depth after the restart', depthAfterRestart],
    ['refused, by status', summary.rejected],
    ['unanswered', summary.unanswered],
    ['rows in votes', table.rows],
    ['accepted but not recorded', table.missing.length],
    ['dead letters', dead.length],
    ['all recorded after the load, ms', Date.now() - waitStarted],
  ]);
  expect(table.missing).toEqual([]);
  expect(depthAtKill).toBeGreaterThan(0);
  expect(depthAfterRestart).toBeGreaterThanOrEqual(depthAtKill);
  expect(dead).toEqual([]);
  expect(beforeKill).toBeGreaterThanOrEqual(100);
  expect(summary.accepted.size).toBeGreaterThan(beforeKill);
  expect(table.rows).toBeLessThanOrEqual(summary.sent);
});
