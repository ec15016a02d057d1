// The original's load, form posts of `vote=a|b`, one new voter each, against a deployed stack:
// what the Swarm tests send and then look for in the `votes` table.
import { expect } from '@playwright/test';

export type Vote = 'a' | 'b';

/** An accepted vote: what it was, through which edge, when it was sent and answered (ms since the epoch). */
export interface Accepted {
  vote: Vote;
  via: string;
  sentAt: number;
  answeredAt: number;
}

/** The voter id in a 303's signed `voter_id` cookie, `<id>.<seq>.<mac>`. */
export function voterId(response: Response): string {
  const cookie = response.headers.getSetCookie().find((c) => c.startsWith('voter_id='));
  const id = /^voter_id=([0-9a-f]{32})\.\d+\./.exec(cookie ?? '')?.[1];
  if (!id) throw new Error(`a vote answered ${response.status} without a voter_id cookie: ${cookie}`);
  return id;
}

/**
 * Casts `total` votes (or until `until()` says stop), `concurrency` at once, the i-th to
 * `target(i)` (a base URL). Returns the accepted votes by voter id, how many got no answer
 * (connection lost, timed out, or a server error: maybe queued, maybe not) and every refusal by
 * status or error code, also by target.
 */
export async function castVotes(
  target: (i: number) => string,
  total: number,
  concurrency: number,
  during?: (sent: number) => Promise<void> | void,
  { timeoutMs = 15_000, until = () => false }: { timeoutMs?: number; until?: () => boolean } = {},
) {
  const accepted = new Map<string, Accepted>();
  let unanswered = 0;
  const refused: Record<string, number> = {};
  const refusedVia: Record<string, Record<string, number>> = {};
  const refuse = (via: string, why: string | number) => {
    refused[why] = (refused[why] ?? 0) + 1;
    refusedVia[via] ??= {};
    refusedVia[via][why] = (refusedVia[via][why] ?? 0) + 1;
  };
  let next = 0;
  const worker = async () => {
    while (next < total && !until()) {
      const i = next++;
      if (during) await during(i);
      const vote: Vote = i % 3 === 2 ? 'b' : 'a';
      const via = target(i);
      const sentAt = Date.now();
      let response: Response;
      try {
        response = await fetch(`${via}/`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `vote=${vote}`,
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
        });
        await response.arrayBuffer();
      } catch (error) {
        refuse(via, (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name ?? 'error');
        unanswered++;
        continue;
      }
      if (response.status === 303) {
        accepted.set(voterId(response), { vote, via, sentAt, answeredAt: Date.now() });
        continue;
      }
      refuse(via, response.status);
      if (response.status >= 500) unanswered++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { accepted, unanswered, refused, refusedVia, sent: next };
}

/** Async calls not yet acknowledged, from an edge's metrics; undefined when not reported. */
export async function queueDepth(base: string): Promise<number | undefined> {
  const response = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${process.env.GATEWAY_ADMIN_TOKEN}` } });
  expect(response.status).toBe(200);
  const line = (await response.text()).split('\n').find((l) => l.startsWith('gateway_queue_depth '));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}
