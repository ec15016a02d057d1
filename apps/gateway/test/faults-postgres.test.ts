import { afterAll, describe, expect, it } from 'vitest';
import { startPrivatePostgres, startPrivateRedis, waitUntil, type RestartablePostgres, type RestartableRedis } from '@platform/test-services';
import { acceptedAtLeast, childGateway, report, sleep, waitForAllRecorded, type ChildGateway } from './faults.js';
import { acceptedOf, byStatus, sentAndAnsweredBetween, steadyVotes } from './votes-load.js';

// PostgreSQL (the votes, and the queue too when it is the embedded default) stopped for 10 s
// under a steady load of votes, then started: every vote accepted before, during and after is
// recorded once it is back. With the queue on PostgreSQL, votes sent while it is down cannot be
// queued: each is answered 503 with Retry-After, none accepted. With the queue on Redis they
// are accepted meanwhile and recorded once PostgreSQL is back.
const refusal = '503 Retry-After: 1 {"error":"the vote could not be queued; please try again"}';

describe.each([
  // Break it catches: the vote function answering 200 although the enqueue failed.
  ['queue on PostgreSQL (the embedded default)', false],
  // Break it catches: the gateway putting its queue on DATABASE_URL whatever QUEUE_URL says.
  ['queue on Redis (the compose stack)', true],
])('PostgreSQL stopped for 10 s under load, %s', (_label, queueOnRedis) => {
  let postgres: RestartablePostgres | undefined;
  let redis: RestartableRedis | undefined;
  let app: ChildGateway | undefined;
  afterAll(async () => {
    await app?.close();
    await postgres?.stop();
    await redis?.stop();
  });

  it(queueOnRedis
    ? 'accepts votes while PostgreSQL is down and records every one once it is back'
    : 'refuses votes with 503 and Retry-After while PostgreSQL is down and records every accepted one', { timeout: 120_000 }, async () => {
    postgres = await startPrivatePostgres();
    redis = queueOnRedis ? await startPrivateRedis({ appendonly: true }) : undefined;
    app = await childGateway({
      DATABASE_URL: postgres.url,
      ...(redis ? { QUEUE_URL: redis.url, EVENTS_URL: redis.url } : {}),
    });
    await app.start();
    const load = steadyVotes(() => app!.url, { perSecond: 80 });
    await acceptedAtLeast(load.summary, 100);
    await postgres.pause();
    // Votes sent from here until the restart begins meet a stopped PostgreSQL.
    const downFrom = Date.now();
    await sleep(10_000);
    const downUntil = Date.now();
    await postgres.resume();
    // Serving again: votes sent after the restart are accepted.
    const upAgain = Date.now();
    await waitUntil(() => load.answers.filter((a) => a.sentAt >= upAgain && a.status === 200).length >= 50, {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: 'votes accepted again after the restart',
    });
    const summary = await load.stop();
    const { answers } = load;
    const waitStarted = Date.now();
    const table = await waitForAllRecorded(postgres.url, summary.accepted, 60_000);
    const whileDown = sentAndAnsweredBetween(answers, downFrom, downUntil);
    const acceptedWhileDown = acceptedOf(whileDown);
    const refusedWhileDown = whileDown.filter((a) => a.status !== 200);
    const refusalShapes = [...new Set(refusedWhileDown.map((a) => `${a.status} Retry-After: ${a.retryAfter} ${JSON.stringify({ error: a.error })}`))];
    report([
      `PostgreSQL stopped for ${downUntil - downFrom} ms under load (${queueOnRedis ? 'queue on Redis' : 'queue on PostgreSQL'}):`,
      ['votes sent', summary.sent],
      ['accepted (200)', summary.accepted.size],
      ['sent and answered while stopped, by status', byStatus(whileDown)],
      ['refusals while stopped, as answered', refusalShapes],
      ['all answers, by status', byStatus(answers)],
      ['rows in votes', table.rows],
      ['accepted but not recorded', table.missing.length],
      ['all recorded after the load, ms', Date.now() - waitStarted],
    ]);
    // Voter by voter: each accepted vote is in `votes`, with the vote that was accepted.
    expect(table.missing).toEqual([]);
    if (queueOnRedis) {
      expect(acceptedWhileDown.size).toBeGreaterThan(0);
      expect(byStatus(whileDown)).toEqual({ 200: whileDown.length });
    } else {
      // Durability: nothing is accepted that could not be queued; each such vote is refused, retryably.
      expect(acceptedWhileDown.size).toBe(0);
      expect(refusedWhileDown.length).toBeGreaterThan(0);
      expect(refusalShapes).toEqual([refusal]);
    }
  });
});
