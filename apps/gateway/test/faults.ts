// Helpers of the fault tests: the app's gateway as a child process (as `npm start` runs it), a
// steady load of votes that remembers which were accepted, and the check that each accepted
// vote is in the `votes` table.
import pg from 'pg';
import { appProcess, waitUntil, type AppProcess } from '@voting/test-services';

/** The app's gateway as a child process, on free ports with its own data folder. */
export type ChildGateway = AppProcess;

/** At default settings: the load comes from loopback, which the per-address limit leaves alone. */
export function childGateway(settings: Record<string, string>): Promise<ChildGateway> {
  return appProcess({ env: settings, output: 'capture', startTimeoutMs: 30_000 });
}

export interface LoadSummary {
  sent: number;
  /** voterId -> vote, of every vote answered 200. */
  accepted: Map<string, 'a' | 'b'>;
  /** Answers other than 200, by status. */
  rejected: Record<number, number>;
  /** Requests that got no answer (connection refused or reset). */
  unanswered: number;
}

/**
 * Votes as new voters (`POST /function/vote`, no cookie) at about `perSecond`, `inFlight` at a
 * time at most, until stopped. Every vote answered 200 is accepted: it must be recorded.
 */
export function steadyVotes(url: () => string, { perSecond = 100, inFlight = 16 } = {}) {
  const summary: LoadSummary = { sent: 0, accepted: new Map(), rejected: {}, unanswered: 0 };
  let running = true;
  let busy = 0;
  const pending = new Set<Promise<void>>();
  const one = async () => {
    const vote = summary.sent % 3 === 2 ? 'b' : 'a';
    summary.sent++;
    try {
      const response = await fetch(`${url()}/function/vote`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ vote }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await response.json().catch(() => ({}))) as { voterId?: string };
      if (response.status === 200 && body.voterId) summary.accepted.set(body.voterId, vote);
      else summary.rejected[response.status] = (summary.rejected[response.status] ?? 0) + 1;
    } catch {
      summary.unanswered++;
    }
  };
  const loop = (async () => {
    const gap = 1_000 / perSecond;
    let next = Date.now();
    while (running) {
      next += gap;
      if (busy < inFlight) {
        busy++;
        const p: Promise<void> = one().finally(() => {
          busy--;
          pending.delete(p);
        });
        pending.add(p);
      }
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    }
  })();
  return {
    summary,
    async stop(): Promise<LoadSummary> {
      running = false;
      await loop;
      await Promise.all(pending);
      return summary;
    },
  };
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
  await waitUntil(async () => {
    last = await compareWithTable(databaseUrl, accepted);
    return last.missing.length === 0;
  }, { timeoutMs, intervalMs: 250, what: 'every accepted vote to be recorded' }).catch(() => undefined);
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
