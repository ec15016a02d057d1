import { afterAll, describe, expect, it } from 'vitest';
import { startPrivatePostgres, startPrivateRedis, type RestartablePostgres, type RestartableRedis } from '@voting/test-services';
import { acceptedAtLeast, childGateway, report, sleep, steadyVotes, waitForAllRecorded, type ChildGateway } from './faults.js';

// PostgreSQL (the votes, and the queue too when it is the embedded default) stopped for 10 s
// under a steady load of votes, then started: every vote accepted before, during and after is
// recorded once it is back. Votes that could not be queued meanwhile are refused (503), not lost.
describe.each([
  ['queue on PostgreSQL (the embedded default)', false],
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

  it('records every accepted vote once PostgreSQL is back', { timeout: 90_000 }, async () => {
    postgres = await startPrivatePostgres();
    redis = queueOnRedis ? await startPrivateRedis({ appendonly: true }) : undefined;
    app = await childGateway({
      DATABASE_URL: postgres.url,
      ...(redis ? { QUEUE_URL: redis.url, EVENTS_URL: redis.url } : {}),
    });
    await app.start();
    const load = steadyVotes(() => app!.url, { perSecond: 80 });
    await acceptedAtLeast(load.summary, 100);
    const beforeStop = load.summary.accepted.size;
    await postgres.pause();
    const stoppedAt = Date.now();
    await sleep(10_000);
    const duringStop = load.summary.accepted.size - beforeStop;
    await postgres.resume();
    const downMs = Date.now() - stoppedAt;
    await sleep(3_000);
    const summary = await load.stop();
    const waitStarted = Date.now();
    const table = await waitForAllRecorded(postgres.url, summary.accepted, 60_000);
    report([
      `PostgreSQL stopped for ${downMs} ms under load (${queueOnRedis ? 'queue on Redis' : 'queue on PostgreSQL'}):`,
      ['votes sent', summary.sent],
      ['accepted (200)', summary.accepted.size],
      ['accepted before the stop', beforeStop],
      ['accepted while stopped', duringStop],
      ['refused, by status', summary.rejected],
      ['unanswered', summary.unanswered],
      ['rows in votes', table.rows],
      ['accepted but not recorded', table.missing.length],
      ['all recorded after the load, ms', Date.now() - waitStarted],
    ]);
    expect(table.missing).toEqual([]);
    // It took votes again once PostgreSQL was back.
    expect(summary.accepted.size).toBeGreaterThan(beforeStop + duringStop);
    // Refused votes may have been queued just before the refusal: rows are at most the votes sent.
    expect(table.rows).toBeGreaterThanOrEqual(summary.accepted.size);
    expect(table.rows).toBeLessThanOrEqual(summary.sent);
  });
});
