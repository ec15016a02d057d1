// A steady load of votes for the fault tests: it remembers which were accepted (and the voters'
// cookies, to vote again as them), and every answer with its times, status, Retry-After and
// error text, so that a test can say what was answered while a service was down.

export type Vote = 'a' | 'b';

export interface LoadSummary {
  sent: number;
  /** voterId -> vote, of every vote answered 200. */
  accepted: Map<string, Vote>;
  /** voterId -> the voter's cookie (`name=value`) of every vote answered 200: to vote again as that voter. */
  cookies: Map<string, string>;
  /** Answers other than 200, by status. */
  rejected: Record<number, number>;
  /** Requests that got no answer (connection refused or reset, or none within 10 s). */
  unanswered: number;
}

export interface VoteAnswer {
  vote: Vote;
  /** Date.now() when the request was sent and when its answer (or failure) arrived. */
  sentAt: number;
  answeredAt: number;
  /** 0: no answer. */
  status: number;
  retryAfter: string | null;
  /** The JSON `error` of a refusal, or the network error's message. */
  error?: string;
  voterId?: string;
}

/**
 * Votes as new voters (`POST /function/vote`, no cookie) at about `perSecond`, `inFlight` at a
 * time at most, until stopped. Every vote answered 200 is accepted: it must be recorded.
 */
export function steadyVotes(url: () => string, { perSecond = 100, inFlight = 16 } = {}) {
  const answers: VoteAnswer[] = [];
  const summary: LoadSummary = { sent: 0, accepted: new Map(), cookies: new Map(), rejected: {}, unanswered: 0 };
  let running = true;
  let busy = 0;
  const pending = new Set<Promise<void>>();
  const one = async () => {
    const vote: Vote = summary.sent % 3 === 2 ? 'b' : 'a';
    summary.sent++;
    const sentAt = Date.now();
    let answer: VoteAnswer;
    try {
      const response = await fetch(`${url()}/function/vote`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ vote }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await response.json().catch(() => ({}))) as { voterId?: string; error?: string };
      answer = {
        vote,
        sentAt,
        answeredAt: Date.now(),
        status: response.status,
        retryAfter: response.headers.get('retry-after'),
        error: body.error,
        voterId: body.voterId,
      };
      const cookie = response.headers.get('set-cookie')?.split(';')[0];
      if (answer.status === 200 && body.voterId && cookie) summary.cookies.set(body.voterId, cookie);
    } catch (error) {
      answer = { vote, sentAt, answeredAt: Date.now(), status: 0, retryAfter: null, error: String((error as Error).cause ?? (error as Error).message) };
    }
    answers.push(answer);
    if (answer.status === 200 && answer.voterId) summary.accepted.set(answer.voterId, vote);
    else if (answer.status === 0) summary.unanswered++;
    else summary.rejected[answer.status] = (summary.rejected[answer.status] ?? 0) + 1;
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
    answers,
    async stop(): Promise<LoadSummary> {
      running = false;
      await loop;
      await Promise.all(pending);
      return summary;
    },
  };
}

/** Votes sent at or after `from` and answered at or before `to`: wholly inside that window. */
export const sentAndAnsweredBetween = (answers: VoteAnswer[], from: number, to: number) => answers.filter((a) => a.sentAt >= from && a.answeredAt <= to);

/** How many answers had each status (0: none). */
export function byStatus(answers: VoteAnswer[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const a of answers) counts[a.status] = (counts[a.status] ?? 0) + 1;
  return counts;
}

/** Accepted voters of some answers, as faults.ts's `accepted` map. */
export const acceptedOf = (answers: VoteAnswer[]) => new Map(answers.filter((a) => a.status === 200 && a.voterId).map((a) => [a.voterId!, a.vote] as const));
