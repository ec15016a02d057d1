// Helpers of the fault tests: the app's gateway as a child process (as `npm start` runs it), a
// steady load of votes (votes-load.ts), the check that each accepted vote is
// in the `votes` table, and, for kills in the middle of calls, the calls a consumer held and
// whether they were delivered again.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { appProcess, waitUntil, type AppProcess } from '@platform/test-services';
import type { LoadSummary, Vote } from './votes-load.js';

export { steadyVotes, type LoadSummary, type Vote } from './votes-load.js';

/** The app's gateway as a child process, on free ports with its own data folder. */
export type ChildGateway = AppProcess;

/** At default settings: the load comes from loopback, which the per-address limit leaves alone. */
export function childGateway(settings: Record<string, string>): Promise<ChildGateway> {
  return appProcess({ env: settings, output: 'capture', startTimeoutMs: 30_000 });
}

/** Votes in the table, and the accepted ones that are missing or hold another vote. */
export async function compareWithTable(databaseUrl: string, accepted: Map<string, 'a' | 'b'>) {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string; vote: string }>('SELECT id, vote FROM votes');
    const table = new Map(rows.map((r) => [r.id, r.vote]));
    const missing = [...accepted].filter(([id, vote]) => table.get(id) !== vote).map(([id]) => id);
    return { rows: rows.length, missing };
  } finally {
    await client.end();
  }
}

/**
 * Waits until every accepted vote is in the table, or `timeoutMs`; answers the table's state
 * then (the caller reports it, then asserts that nothing is missing).
 */
export async function waitForAllRecorded(databaseUrl: string, accepted: Map<string, 'a' | 'b'>, timeoutMs: number) {
  let last = { rows: 0, missing: [] as string[] };
  await waitUntil(
    async () => {
      last = await compareWithTable(databaseUrl, accepted);
      return last.missing.length === 0;
    },
    { timeoutMs, intervalMs: 250, what: 'every accepted vote to be recorded' },
  ).catch(() => undefined);
  return last;
}

export function report(lines: Array<string | [string, unknown]>): void {
  process.stdout.write(`${lines.map((l) => (typeof l === 'string' ? l : `  ${l[0]}: ${JSON.stringify(l[1])}`)).join('\n')}\n`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the load has `count` accepted votes (the app is serving steadily), however slow the machine. */
export async function acceptedAtLeast(summary: LoadSummary, count: number): Promise<void> {
  await waitUntil(() => summary.accepted.size >= count, { timeoutMs: 30_000, intervalMs: 50, what: `${count} accepted votes` });
}

/**
 * Votes again as the given voters (their cookies), each for `vote`, `inFlight` at a time: the
 * votes answered 200 as the same voter, and the statuses of the others ('unanswered' if none).
 */
export async function voteAgain(url: string, voters: Array<{ voterId: string; cookie: string; vote: Vote }>, inFlight = 8) {
  const accepted = new Map<string, Vote>();
  const refused: Record<string, number> = {};
  const todo = [...voters];
  const worker = async () => {
    for (let v = todo.shift(); v; v = todo.shift()) {
      let outcome: string;
      try {
        const response = await fetch(`${url}/function/vote`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', cookie: v.cookie },
          body: JSON.stringify({ vote: v.vote }),
          signal: AbortSignal.timeout(10_000),
        });
        const body = (await response.json().catch(() => ({}))) as { voterId?: string };
        outcome = response.status === 200 && body.voterId !== v.voterId ? 'another voter' : String(response.status);
      } catch {
        outcome = 'unanswered';
      }
      if (outcome === '200') accepted.set(v.voterId, v.vote);
      else refused[outcome] = (refused[outcome] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { accepted, refused };
}

/** The other option: a voter's second vote differs from the first, so an old one coming back shows. */
export const otherVote = (vote: Vote): Vote => (vote === 'a' ? 'b' : 'a');

/**
 * Holds an exclusive lock on `votes` until released, so `record-vote` calls block in the middle
 * of their INSERT (reads go on): a kill then lands mid-call for sure.
 */
export async function lockVotes(databaseUrl: string): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE votes IN EXCLUSIVE MODE');
  return async () => {
    await client.query('COMMIT');
    await client.end();
  };
}

/**
 * Backends of this database whose `INSERT INTO votes` waits for a lock: the statements of
 * `record-vote` calls held by `lockVotes` (the queue's own statements never touch `votes`).
 */
export async function insertsWaitingOnVotes(db: pg.Pool): Promise<number[]> {
  const { rows } = await db.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO votes%'
     ORDER BY pid`,
  );
  return rows.map((r) => r.pid);
}

/**
 * Ends the given backends, if still there; answers how many were ended. PostgreSQL does not
 * notice a dead client while its statement waits for a lock: without this, the statement of a
 * killed function would commit when the lock goes, and a vote would be recorded with no redelivery.
 */
export async function endBackends(db: pg.Pool, pids: number[]): Promise<number> {
  if (pids.length === 0) return 0;
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid = ANY($1::int[])',
    [pids],
  );
  return rows[0]!.n;
}

/** A queued call delivered to a consumer and not yet acknowledged. */
export interface HeldCall {
  /** The queue's message id. */
  id: string;
  attempt: number;
  /** The gateway's id of the async call (`GET /system/calls/<callId>`). */
  callId: string;
  /** voterId -> vote, of the votes it carries. */
  votes: Map<string, Vote>;
  /** Before this (ms since the epoch) no other consumer may be given it. */
  redeliverableAt: number;
}

function heldCall(id: string, attempt: number, body: string, redeliverableAt: number): HeldCall {
  const call = JSON.parse(body) as { callId: string; request: { body: string } };
  const parsed = JSON.parse(call.request.body) as { voterId: string; vote: Vote } | Array<{ voterId: string; vote: Vote }>;
  const votes = new Map((Array.isArray(parsed) ? parsed : [parsed]).map((m) => [m.voterId, m.vote] as const));
  return { id, attempt, callId: call.callId, votes, redeliverableAt };
}

/** Calls of queue `queue` (PostgreSQL adapter) delivered and still locked, to `lockedBy` if given. */
export async function heldInSqlQueue(db: pg.Pool, queue: string, lockedBy?: string): Promise<HeldCall[]> {
  const { rows } = await db.query<{ id: string; attempt: number; body: string; until: number }>(
    `SELECT id::text AS id, attempt, body, extract(epoch FROM locked_until) * 1000 AS until FROM fn_queue
     WHERE queue = $1 AND locked_until > now() AND ($2::text IS NULL OR locked_by = $2) ORDER BY id`,
    [queue, lockedBy ?? null],
  );
  return rows.map((r) => heldCall(r.id, r.attempt, r.body, Number(r.until)));
}

const redis = async (url: string, ...command: string[]): Promise<unknown> =>
  JSON.parse((await promisify(execFile)('redis-cli', ['-u', url, '--json', ...command], { maxBuffer: 64 << 20 })).stdout);

/**
 * Calls of stream `stream` (Redis adapter, group `workers`) pending for `consumer`: read by it,
 * not acknowledged. Another consumer reclaims one once it is idle for `visibilityMs`.
 */
export async function heldInRedisQueue(url: string, stream: string, consumer: string, visibilityMs: number): Promise<HeldCall[]> {
  const now = Date.now();
  const pending = (await redis(url, 'XPENDING', stream, 'workers', '-', '+', '100000', consumer)) as Array<[string, string, number, number]>;
  const entries = new Map(((await redis(url, 'XRANGE', stream, '-', '+')) as Array<[string, string[]]>).map(([id, fields]) => [id, fields]));
  return pending.map(([entryId, , idleMs]) => {
    const list = entries.get(entryId) ?? [];
    const fields = Object.fromEntries(list.flatMap((value, i) => (i % 2 === 0 ? [[value, list[i + 1]!]] : [])));
    // A first delivery carries only the body; a retry carries the original id and attempt.
    return heldCall(fields.id ?? entryId, Number(fields.attempt ?? 1), fields.body ?? '{}', now - idleMs + visibilityMs);
  });
}

/** What a gateway knows of an async call (`GET /system/calls/<id>`). */
export interface CallState {
  status: string;
  attempts: number;
  error?: string | undefined;
}

/** A call's state from a gateway's HTTP API; undefined if it does not know the call. */
export async function callState(gatewayUrl: string, callId: string): Promise<CallState | undefined> {
  const response = await fetch(`${gatewayUrl}/system/calls/${callId}`, { signal: AbortSignal.timeout(5_000) });
  return response.ok ? ((await response.json()) as CallState) : undefined;
}

/**
 * Waits until every held call was delivered again (attempt 2 or more) and then acknowledged
 * (settled with no error), or `timeoutMs`; answers the held calls that were, and those that
 * were not with what the gateway knows of them. Whether their votes were recorded is the table's
 * to say. Not the status: a call run inside another call's batch keeps the result, so the
 * status, of its earlier attempt.
 */
export async function waitForRedelivery(
  held: HeldCall[],
  state: (callId: string) => Promise<CallState | undefined> | CallState | undefined,
  timeoutMs: number,
) {
  const done = (s: CallState | undefined) => s !== undefined && s.attempts >= 2 && s.status === 'succeeded';
  let states: Array<CallState | undefined> = [];
  await waitUntil(
    async () => {
      states = await Promise.all(held.map((h) => state(h.callId)));
      return states.every(done);
    },
    { timeoutMs, intervalMs: 200, what: 'the held calls to be delivered again' },
  ).catch(() => undefined);
  const statuses: Record<string, number> = {};
  for (const s of states) if (done(s)) statuses[s!.status] = (statuses[s!.status] ?? 0) + 1;
  return {
    redelivered: held.filter((_, i) => done(states[i])),
    /** Status the gateway gives the redelivered calls, by status. */
    statuses,
    notRedelivered: held.flatMap((h, i) => (done(states[i]) ? [] : [{ callId: h.callId, state: states[i] ?? 'unknown' }])),
  };
}

/** voterId -> vote, of every vote the calls carry. */
export const votesOf = (calls: HeldCall[]): Map<string, Vote> => new Map(calls.flatMap((c) => [...c.votes]));

/**
 * What `votes` must hold: the accepted votes, each vote of a held call (queued, so it must be
 * recorded, even if its voter never got the answer), and the later votes cast as the same voters.
 */
export function expectedVotes(accepted: Map<string, Vote>, held: HeldCall[], later: Map<string, Vote>): Map<string, Vote> {
  const expected = new Map(accepted);
  for (const [voter, vote] of votesOf(held)) if (!expected.has(voter)) expected.set(voter, vote);
  for (const [voter, vote] of later) expected.set(voter, vote);
  return expected;
}

/**
 * Waits until the `record-vote` calls in flight are all inside PostgreSQL waiting for the lock
 * of `lockVotes`, and the gateway's worker takes no more: as many INSERTs wait as calls are in
 * flight (`inFlight`), and the calls delivered from queue `queue` (PostgreSQL adapter) stay the
 * same between two looks. Answers those calls and the backends of their statements.
 */
export async function heldMidInsert(db: pg.Pool, queue: string, inFlight: () => number, timeoutMs = 8_000) {
  let previous = '';
  return waitUntil(
    async () => {
      const waiting = await insertsWaitingOnVotes(db);
      const held = await heldInSqlQueue(db, queue);
      const calls = inFlight();
      const key = `${held.map((h) => h.id).join()} ${waiting.join()} ${calls}`;
      const settled = calls > 0 && waiting.length === calls && key === previous;
      previous = key;
      return settled && { held, waiting };
    },
    { timeoutMs, intervalMs: 100, what: 'record-vote calls held mid-INSERT, the worker taking no more' },
  );
}

/**
 * Second votes, for the other option, of every other voter of `calls` whose first vote was
 * accepted: the rest keep their first vote, so the table shows whether those came back at all.
 */
export function laterVotesFor(calls: HeldCall[], summary: LoadSummary): Array<{ voterId: string; cookie: string; vote: Vote }> {
  return [...votesOf(calls)].flatMap(([voterId, vote], i) => {
    const cookie = summary.cookies.get(voterId);
    return cookie && i % 2 === 0 ? [{ voterId, cookie, vote: otherVote(vote) }] : [];
  });
}
