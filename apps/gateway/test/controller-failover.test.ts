import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { io as connect } from 'socket.io-client';
import { PLATFORM_EVENT, PLATFORM_NAMESPACE, type PlatformSnapshot } from '@platform/protocol';
import { appProcess, createTestDatabase, waitUntil, type AppProcess } from '@platform/test-services';
import { acceptedAtLeast, report, steadyVotes, waitForAllRecorded } from './faults.js';

// Controllers and edges as processes of their own (GATEWAY_ROLE), as the stack runs them: two
// controllers on one database, one leading and one standing by, and two edges that find the
// leader in the member list.

const leads = async (controller: AppProcess) => ((await (await fetch(`${controller.url}/healthz`)).json()) as { leader: boolean }).leader;
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('two controllers and two edges', () => {
  let db: { url: string; drop(): Promise<void> };
  let edges: AppProcess[];
  let controllers: AppProcess[];
  beforeAll(async () => {
    db = await createTestDatabase(process.env.DATABASE_URL!);
    // Calls held by a process that died come back after the visibility timeout: keep it short.
    const shared = { DATABASE_URL: db.url, QUEUE_VISIBILITY_SECONDS: '12' };
    edges = await Promise.all([0, 1].map(() => appProcess({ env: { ...shared, GATEWAY_ROLE: 'edge' } })));
    controllers = await Promise.all([0, 1].map(() => appProcess({ env: { ...shared, GATEWAY_ROLE: 'controller', FUNCTION_GATEWAY_URL: edges[0]!.url } })));
    await controllers[0]!.start();
    await waitUntil(() => leads(controllers[0]!), { timeoutMs: 10_000, what: 'the first controller to lead' });
    await controllers[1]!.start();
    await Promise.all(edges.map((edge) => edge.start()));
  }, 120_000);
  afterAll(async () => {
    await Promise.all([...(edges ?? []), ...(controllers ?? [])].map((p) => p.close()));
    await db?.drop();
  });

  // Break it catches: a standby that never takes over, or edges that keep asking the dead controller.
  it('hands over to the standby when the leading controller is killed, losing no accepted vote', { timeout: 90_000 }, async () => {
    let turn = 0;
    const load = steadyVotes(() => edges[turn++ % 2]!.url, { perSecond: 100, inFlight: 16 });
    await acceptedAtLeast(load.summary, 150);
    const killedAt = Date.now();
    await controllers[0]!.signal('SIGKILL');
    const tookOverAt = await waitUntil(async () => (await leads(controllers[1]!)) && Date.now(), { timeoutMs: 15_000, what: 'the standby to lead' });
    const tier = async () => (await (await fetch(`${edges[1]!.url}/system/gateways`)).json()) as Array<{ role: string; pid: number; leader: boolean }>;
    await waitUntil(async () => (await tier()).some((m) => m.role === 'controller' && m.leader && m.pid === controllers[1]!.pid()), {
      timeoutMs: 10_000,
      what: 'the new leader listed',
    });
    await acceptedAtLeast(load.summary, load.summary.accepted.size + 300);
    const summary = await load.stop();
    const table = await waitForAllRecorded(db.url, summary.accepted, 30_000);
    const failures = load.answers.filter((a) => a.status !== 200);
    report([
      'the leading controller SIGKILLed under 100 votes/s, two edges, a standby controller:',
      ['ms from the kill until the standby led', tookOverAt - killedAt],
      ['accepted', summary.accepted.size],
      ['rejected', summary.rejected],
      ['unanswered', summary.unanswered],
      ['accepted votes missing from the table', table.missing.length],
      [
        'failures: how many, sent from / to ms after the kill',
        `${failures.length}, ${Math.min(...failures.map((a) => a.sentAt - killedAt))} / ${Math.max(...failures.map((a) => a.sentAt - killedAt))}`,
      ],
      ['their answers', [...new Set(failures.map((a) => `${a.status} ${a.error ?? ''}`))]],
    ]);
    expect(table.missing).toEqual([]);
    // The edges live on. Calls in flight on the dead controller's instances may fail (16 at a time
    // at most); votes sent after the kill fail only while no controller can start an instance (503
    // with Retry-After), until a little after the takeover.
    const sentAfterKill = failures.filter((a) => a.sentAt >= killedAt);
    expect(failures.length - sentAfterKill.length).toBeLessThanOrEqual(16);
    expect(sentAfterKill.filter((a) => !(a.status === 503 && a.retryAfter))).toEqual([]);
    expect(sentAfterKill.filter((a) => a.sentAt > tookOverAt + 5_000)).toEqual([]);
  });

  // Break it catches: a leader that goes on acting once its lock is gone (it must exit before the other leads).
  it('stops a leader that lost its database session at once, and the standby leads', { timeout: 60_000 }, async () => {
    const [standby, leader] = controllers as [AppProcess, AppProcess];
    await standby.start(); // the controller killed above, back as a standby
    expect(await leads(leader)).toBe(true);
    expect(await leads(standby)).toBe(false);
    const leaderPid = leader.pid()!;
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      // The session holding the lead's advisory lock: ending it frees the lock for the standby.
      const { rows } = await admin.query<{ ended: boolean }>(
        `SELECT pg_terminate_backend(a.pid) AS ended FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
         WHERE a.datname = current_database() AND a.application_name = 'leadership:controller' AND l.locktype = 'advisory' AND l.granted`,
      );
      expect(rows).toEqual([{ ended: true }]);
    } finally {
      await admin.end();
    }
    await waitUntil(() => !alive(leaderPid), { timeoutMs: 10_000, what: 'the old leader to exit' });
    expect(await leader.signal('SIGKILL')).toBe(1);
    await waitUntil(() => leads(standby), { timeoutMs: 10_000, what: 'the standby to lead' });
    const vote = async (edge: AppProcess) =>
      (await fetch(`${edge.url}/function/vote`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"vote":"b"}' })).status;
    // Each edge finds the new leader on its own (from the member list): both accept votes again.
    for (const edge of edges) await waitUntil(async () => (await vote(edge)) === 200, { timeoutMs: 10_000, what: 'a vote accepted under the new leader' });
  });

  // Break it catches: a dashboard that lists only the instances whose start its own edge heard of.
  it('shows, on an edge started later, the instances the controller runs for the other edges', { timeout: 60_000 }, async () => {
    const vote = await fetch(`${edges[0]!.url}/function/vote`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"vote":"a"}' });
    expect(vote.status).toBe(200);
    const late = await appProcess({ env: { DATABASE_URL: db.url, GATEWAY_ROLE: 'edge' } });
    edges.push(late);
    await late.start();
    const dashboard = connect(`${late.url}${PLATFORM_NAMESPACE}`, { transports: ['websocket'], forceNew: true, reconnection: false });
    try {
      let snapshot: PlatformSnapshot | undefined;
      dashboard.on(PLATFORM_EVENT, (s: PlatformSnapshot) => (snapshot = s));
      const running = (fn: string) => snapshot?.functions.find((f) => f.name === fn)?.instances ?? [];
      await waitUntil(() => running('vote').length > 0 && running('record-vote').length > 0, { timeoutMs: 10_000, what: "the other edges' instances" });
      expect(running('vote')[0]).toMatchObject({ reason: 'call', coldStartMs: expect.any(Number), startedAt: expect.any(Number) });
    } finally {
      dashboard.close();
    }
  });

  // Break it catches: a timeline that starts empty on an edge started later (each edge showing only
  // the events it heard), so a dashboard opened on a new edge misses every scale event before it.
  it('shows, on an edge started later, the scale events from before it started', { timeout: 60_000 }, async () => {
    const vote = await fetch(`${edges[0]!.url}/function/vote`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"vote":"a"}' });
    expect(vote.status).toBe(200);
    const before = Date.now();
    const late = await appProcess({ env: { DATABASE_URL: db.url, GATEWAY_ROLE: 'edge' } });
    edges.push(late);
    await late.start();
    const dashboard = connect(`${late.url}${PLATFORM_NAMESPACE}`, { transports: ['websocket'], forceNew: true, reconnection: false });
    try {
      const snapshot = await new Promise<PlatformSnapshot>((resolve) => dashboard.once(PLATFORM_EVENT, resolve));
      const earlier = snapshot.timeline.filter((e) => e.at < before);
      expect(earlier).toContainEqual(expect.objectContaining({ function: 'vote', kind: 'started', detail: expect.stringMatching(/^cold start in \d+ ms$/) }));
      expect(new Set(snapshot.timeline.map((e) => JSON.stringify(e))).size, 'each event once').toBe(snapshot.timeline.length);
    } finally {
      dashboard.close();
    }
  });

  // Break it catches: call records kept in the memory of the edge that accepted the call.
  it('answers for an async call on another edge, also once the edge that accepted it is dead', { timeout: 60_000 }, async () => {
    const accepting = await appProcess({ env: { DATABASE_URL: db.url, GATEWAY_ROLE: 'edge' } });
    edges.push(accepting);
    await accepting.start();
    const accepted = await fetch(`${accepting.url}/async-function/vote`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"vote":"b"}',
    });
    expect(accepted.status).toBe(202);
    const { callId } = (await accepted.json()) as { callId: string };
    await accepting.signal('SIGKILL');
    const state = async (edge: AppProcess) => {
      const response = await fetch(`${edge.url}/system/calls/${callId}`);
      return response.ok ? ((await response.json()) as { status: string; result?: { status: number; body: string } }) : undefined;
    };
    await waitUntil(async () => (await state(edges[1]!))?.status === 'succeeded', { timeoutMs: 30_000, what: 'the call succeeded, as another edge tells' });
    // An edge started only now ran no part of it: it can only know the call from the shared records.
    const newcomer = await appProcess({ env: { DATABASE_URL: db.url, GATEWAY_ROLE: 'edge' } });
    edges.push(newcomer);
    await newcomer.start();
    const done = (await state(newcomer))!;
    expect(done.status).toBe('succeeded');
    expect(done.result?.status).toBe(200);
    expect(JSON.parse(done.result!.body)).toMatchObject({ vote: 'b', voterId: expect.any(String) });
  });
});
