import { afterAll, expect, it } from 'vitest';
import { startPrivatePostgres, startPrivateRedis, waitUntil, type RestartablePostgres, type RestartableRedis } from '@platform/test-services';
import { startTestGateway, type TestGateway } from './harness.js';
import { acceptedAtLeast, compareWithTable, report, sleep, waitForAllRecorded } from './faults.js';
import { acceptedOf, byStatus, sentAndAnsweredBetween, steadyVotes, type VoteAnswer } from './votes-load.js';

// Redis (queue and events, as in the compose stack) killed under a steady load of votes and
// started again after 2 s. It keeps an append-only file fsynced every second, as the compose
// stack's Redis does: everything it acknowledged is in the file (written before the reply),
// so every accepted vote is recorded after the restart. So that many accepted votes are only
// in Redis when it dies, the database is stopped before the kill until after the restart: the
// votes accepted meanwhile cannot have been recorded, and their failed attempts wait in the
// queue's retries.
let redis: RestartableRedis | undefined;
let postgres: RestartablePostgres | undefined;
let t: TestGateway | undefined;
afterAll(async () => {
  await t?.close();
  await redis?.stop();
  await postgres?.stop();
});

/** Sum of a counter's series whose labels match, from Prometheus text. */
function counter(metrics: string, name: string, labels: RegExp): number {
  return metrics
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && labels.test(line))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

// Break it catches: the vote function answering 200 without waiting for Redis to store the vote.
it('records every accepted vote after Redis is killed and restarted, and accepts none while it is down', { timeout: 90_000 }, async () => {
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
  const pgDownFrom = Date.now();
  // Votes sent after PostgreSQL stopped and accepted before the kill exist only in Redis.
  const onlyInRedis = (before: number) => acceptedOf(load.answers.filter((a: VoteAnswer) => a.sentAt >= pgDownFrom && a.answeredAt <= before));
  await waitUntil(() => onlyInRedis(Date.now()).size >= 50, { timeoutMs: 30_000, intervalMs: 50, what: '50 votes accepted while PostgreSQL is down' });
  const depthAtKill = await t.queue.depth();
  const killAt = Date.now();
  await redis.kill();
  const redisDownFrom = Date.now();
  await sleep(2_000);
  const redisDownUntil = Date.now();
  await redis.start();
  const depthAfterRestart = await t.queue.depth();
  await postgres.resume();
  // Serving again: votes sent after both are back are accepted.
  const upAgain = Date.now();
  await waitUntil(() => load.answers.filter((a) => a.sentAt >= upAgain && a.status === 200).length >= 50, {
    timeoutMs: 30_000,
    intervalMs: 50,
    what: 'votes accepted again after the restarts',
  });
  const summary = await load.stop();
  const { answers } = load;
  const waitStarted = Date.now();
  const table = await waitForAllRecorded(t.databaseUrl, summary.accepted, 60_000);
  const dead = await t.queue.deadLetters();
  const metrics = await (await fetch(`${t.url}/metrics`)).text();
  const failedAttempts = counter(metrics, 'gateway_function_invocation_total', /function_name="record-vote",code="5\d\d"/);

  const atKill = onlyInRedis(killAt);
  const atKillMissing = (await compareWithTable(t.databaseUrl, atKill)).missing;
  const sentWhileDown = answers.filter((a) => a.sentAt >= redisDownFrom && a.sentAt <= redisDownUntil);
  const answeredWhileDown = sentAndAnsweredBetween(answers, redisDownFrom, redisDownUntil);
  const refusals = [
    ...new Set(answers.filter((a) => a.status !== 200).map((a) => `${a.status} Retry-After: ${a.retryAfter} ${JSON.stringify({ error: a.error })}`)),
  ];
  report([
    `Redis killed (SIGKILL) and restarted after ${redisDownUntil - redisDownFrom} ms under load (append-only file, fsync every second):`,
    ['votes sent', summary.sent],
    ['accepted (200)', summary.accepted.size],
    ['accepted while PostgreSQL was down, before the kill (only in Redis)', atKill.size],
    ['queue depth at the kill (queued calls, each a batch of votes)', depthAtKill],
    ['queue depth after the restart', depthAfterRestart],
    ['sent while Redis was down, by status', byStatus(sentWhileDown)],
    ['sent and answered while Redis was down, by status', byStatus(answeredWhileDown)],
    ['refusals, as answered', refusals],
    ['failed attempts of record-vote (retried)', failedAttempts],
    ['rows in votes', table.rows],
    ['accepted but not recorded', table.missing.length],
    ['of those only in Redis at the kill', atKillMissing.length],
    ['dead letters', dead.length],
    ['all recorded after the load, ms', Date.now() - waitStarted],
  ]);
  // Voter by voter: every accepted vote is recorded, those that were only in Redis at the kill included.
  expect(table.missing).toEqual([]);
  expect(atKill.size).toBeGreaterThanOrEqual(50);
  expect(atKillMissing).toEqual([]);
  // Their recording failed while PostgreSQL was down and was retried until it succeeded.
  expect(failedAttempts).toBeGreaterThan(0);
  expect(dead).toEqual([]);
  // Nothing is answered 200 while Redis cannot store it; a vote sent then waits for it or is refused, retryably.
  expect(sentWhileDown.length).toBeGreaterThan(0);
  expect(acceptedOf(answeredWhileDown).size).toBe(0);
  expect(sentWhileDown.every((a) => a.status === 200 || a.status === 503)).toBe(true);
  expect(refusals.filter((r) => r !== '503 Retry-After: 1 {"error":"the vote could not be queued; please try again"}')).toEqual([]);
});
