import { HttpError } from '@platform/function-contract';

/**
 * What `vote` queues for `record-vote`, one definition for both. A voter's votes are ordered by
 * `seq`, the number the voter's own cookie carries (no clock involved); `votedAt` only breaks a
 * tie between votes one browser sent at the same time, which have no order of their own.
 */
export interface VoteMessage {
  voterId: string;
  vote: 'a' | 'b';
  seq: number;
  votedAt: number;
}

/** Whether `a` was cast after `b` by the same voter. */
export const castAfter = (a: VoteMessage, b: VoteMessage): boolean => a.seq > b.seq || (a.seq === b.seq && a.votedAt > b.votedAt);

const natural = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/**
 * One message or a batch of them; anything else is a 400 (and never retried). A message without
 * `seq` (queued by an older `vote`) counts as seq 0, below any vote cast since.
 */
export function parseMessages(body: string): VoteMessage[] {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || list.length > 50_000) throw new HttpError(400, 'expected 1 to 50000 votes');
  return list.map((item, index) => {
    const m = item as Partial<VoteMessage> | null;
    const seq = m?.seq ?? 0;
    if (
      !m ||
      typeof m.voterId !== 'string' ||
      !/^[0-9a-f]{8,64}$/.test(m.voterId) ||
      (m.vote !== 'a' && m.vote !== 'b') ||
      !natural(seq) ||
      !natural(m.votedAt)
    ) {
      throw new HttpError(400, `vote ${index} is not {"voterId": hex, "vote": "a"|"b", "seq": integer, "votedAt": integer}`);
    }
    return { voterId: m.voterId, vote: m.vote, seq, votedAt: m.votedAt };
  });
}
