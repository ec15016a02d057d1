import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { io as connect } from 'socket.io-client';
import { appProcess, createTestDatabase, waitUntil, type AppProcess } from '@platform/test-services';
import { acceptedAtLeast, compareWithTable, report, steadyVotes, waitForAllRecorded } from './faults.js';

// `npm start` with two edges beside the controller, as on any machine with two cores or more.

/** The edge processes of an app: its children that were given the controller's URL. */
function edgesOf(app: AppProcess): number[] {
  const pid = app.pid()!;
  const children = readdirSync(`/proc/${pid}/task`).flatMap((task) =>
    readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
  );
  return children.filter((child) => {
    try {
      return readFileSync(`/proc/${child}/environ`, 'utf8').includes('CONTROLLER_URL=');
    } catch {
      return false;
    }
  });
}

describe('two edges and a controller', () => {
  let app: AppProcess;
  let db: { url: string; drop(): Promise<void> };
  beforeAll(async () => {
    db = await createTestDatabase(process.env.DATABASE_URL!);
    // A killed edge's calls held from the queue are released at once: the visibility timeout is
    // longer than the test waits for every vote, so only the release can bring them back in time.
    app = await appProcess({ env: { GATEWAY_WORKERS: '2', DATABASE_URL: db.url, QUEUE_VISIBILITY_SECONDS: '60' } });
    await app.start();
    await waitUntil(() => edgesOf(app).length === 2, { timeoutMs: 10_000, what: 'two edges' });
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  // Break it catches: edges or the controller missing from the member list, or a controller not leading.
  it('lists the tier at /system/gateways: one leading controller and both edges', async () => {
    const tier = async () => (await (await fetch(`${app.url}/system/gateways`)).json()) as Array<{ role: string; pid: number; leader: boolean }>;
    const listed = async () => {
      const members = await tier();
      return members.filter((m) => m.role === 'edge').length === 2 && members.some((m) => m.role === 'controller' && m.leader);
    };
    await waitUntil(listed, { timeoutMs: 10_000, what: 'two edges and a leading controller listed' });
    const members = await tier();
    expect(members.filter((m) => m.role === 'controller')).toEqual([expect.objectContaining({ pid: app.pid(), leader: true })]);
    expect(
      members
        .filter((m) => m.role === 'edge')
        .map((m) => m.pid)
        .sort(),
    ).toEqual(edgesOf(app).sort());
  });

  // Break it catches: a socket.io session whose long-polling requests go to an edge that does not hold it
  // (plain round robin: "Session ID unknown"), or scores emitted only by the edge that took the vote.
  it('sends scores to every live client, whichever edge holds its session, long-polling ones included', async () => {
    const clients = Array.from({ length: 6 }, () => connect(app.resultUrl, { transports: ['polling'], forceNew: true, reconnection: false }));
    try {
      const seen = clients.map(() => ({ a: 0, b: 0 }));
      for (const [i, client] of clients.entries()) {
        client.on('scores', (scores: string) => {
          seen[i] = JSON.parse(scores) as { a: number; b: number };
        });
      }
      await waitUntil(() => clients.every((c) => c.connected), { timeoutMs: 10_000, what: 'every client connected' });
      const load = steadyVotes(() => app.url, { perSecond: 50, inFlight: 4 });
      await acceptedAtLeast(load.summary, 60);
      const summary = await load.stop();
      const total = summary.accepted.size;
      await waitUntil(() => seen.every((s) => s.a + s.b >= total), { timeoutMs: 10_000, what: 'every client to see every vote' });
      expect(clients.every((c) => c.connected && c.io.engine.transport.name === 'polling')).toBe(true);
    } finally {
      for (const client of clients) client.close();
    }
  });

  // Break it catches: an edge that dies taking accepted votes with it, or one not started again, or a
  // controller that stops the instances a dead edge was using while the other edge still needs them;
  // the calls it held left to the visibility timeout (when it held any at the kill).
  it('loses no accepted vote when an edge is killed mid-load, fails only what was in flight on it, and starts a new one', { timeout: 90_000 }, async () => {
    const before = edgesOf(app);
    const load = steadyVotes(() => app.url, { perSecond: 150, inFlight: 16 });
    await acceptedAtLeast(load.summary, 150);
    const killed = before[0]!;
    const killedAt = Date.now();
    process.kill(killed, 'SIGKILL');
    const acceptedAtKill = load.summary.accepted.size;
    await acceptedAtLeast(load.summary, acceptedAtKill + 300);
    const summary = await load.stop();
    await waitUntil(() => edgesOf(app).length === 2 && !edgesOf(app).includes(killed), { timeoutMs: 15_000, what: 'a new edge in place of the killed one' });
    const table = await waitForAllRecorded(db.url, summary.accepted, 30_000);
    // Every queued call acknowledged well before the visibility timeout: those the killed edge
    // held (their votes may be recorded already, by the instances it had called) were released.
    const queued = async () => {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        return (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM fn_queue')).rows[0]!.n;
      } finally {
        await client.end();
      }
    };
    const drained = await waitUntil(async () => (await queued()) === 0, { timeoutMs: 20_000, intervalMs: 250 }).then(
      () => true,
      () => false,
    );
    const failures = load.answers.filter((a) => a.status !== 200);
    report([
      'an edge SIGKILLed under 150 votes/s, two edges:',
      ['accepted', summary.accepted.size],
      ['unanswered (in flight on the killed edge)', summary.unanswered],
      ['rejected', summary.rejected],
      ['accepted votes missing from the table', table.missing.length],
      ['queued calls the killed edge held, released at once', /died holding (\d+) queued calls/.exec(app.output())?.[1] ?? 0],
      ['failures (ms after the kill they were sent: answer)', failures.map((a) => `${a.sentAt - killedAt}: ${a.status} ${a.error ?? ''}`)],
    ]);
    expect(table.missing).toEqual([]);
    expect(drained, 'every queued call acknowledged within 20 s (the visibility timeout is 60 s)').toBe(true);
    expect((await compareWithTable(db.url, summary.accepted)).rows).toBeGreaterThanOrEqual(summary.accepted.size);
    // Only requests whose work was on the killed edge may fail: those in flight (16 at a time at most),
    // those the client sent on a kept-alive connection before it saw it closed, and votes whose queueing
    // was on it (503 with Retry-After). Every vote sent a moment after the kill is answered 200.
    expect(failures.length).toBeLessThanOrEqual(16);
    expect(failures.filter((a) => a.status !== 0 && !(a.status === 503 && a.retryAfter))).toEqual([]);
    expect(failures.filter((a) => a.sentAt > killedAt + 1_000)).toEqual([]);
  });
});
