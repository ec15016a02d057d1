import type pg from 'pg';
import { HttpError } from '@voting/function-contract';

export interface VoteMessage {
  voterId: string;
  vote: 'a' | 'b';
  votedAt: number;
}

/** One message or a batch of them; anything else is a 400 (and never retried). */
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
    if (
      !m ||
      typeof m.voterId !== 'string' ||
      !/^[0-9a-f]{8,64}$/.test(m.voterId) ||
      (m.vote !== 'a' && m.vote !== 'b') ||
      !Number.isSafeInteger(m.votedAt) ||
      (m.votedAt as number) < 0
    ) {
      throw new HttpError(400, `vote ${index} is not {"voterId": hex, "vote": "a"|"b", "votedAt": integer}`);
    }
    return { voterId: m.voterId, vote: m.vote, votedAt: m.votedAt as number };
  });
}

/**
 * Upserts votes in one statement. A row changes only if the message is newer than what is
 * stored, so redelivered or out-of-order messages never overwrite a newer vote.
 */
export async function recordVotes(db: pg.Pool, messages: VoteMessage[]): Promise<number> {
  // One row per voter (the newest), since one statement may not update a row twice.
  const latest = new Map<string, VoteMessage>();
  for (const m of messages) {
    const seen = latest.get(m.voterId);
    if (!seen || seen.votedAt < m.votedAt) latest.set(m.voterId, m);
  }
  const rows = [...latest.values()];
  const result = await db.query(
    `INSERT INTO votes (id, vote, voted_at)
     SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::bigint[])
     ON CONFLICT (id) DO UPDATE SET vote = EXCLUDED.vote, voted_at = EXCLUDED.voted_at
     WHERE votes.voted_at < EXCLUDED.voted_at`,
    [rows.map((r) => r.voterId), rows.map((r) => r.vote), rows.map((r) => String(r.votedAt))],
  );
  return result.rowCount ?? 0;
}
