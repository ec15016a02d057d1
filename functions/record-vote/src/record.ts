import type pg from 'pg';
import { castAfter, type VoteMessage } from './message.js';

/**
 * Upserts votes in one statement. A row changes only if the message was cast after the stored
 * vote (a higher seq, or the same seq and a later votedAt), so redelivered or out-of-order
 * messages never overwrite a later vote.
 */
export async function recordVotes(db: pg.Pool, messages: VoteMessage[]): Promise<number> {
  // One row per voter (the last cast), since one statement may not update a row twice.
  const latest = new Map<string, VoteMessage>();
  for (const m of messages) {
    const seen = latest.get(m.voterId);
    if (!seen || castAfter(m, seen)) latest.set(m.voterId, m);
  }
  const rows = [...latest.values()];
  const result = await db.query({
    name: 'votes-upsert',
    text: `INSERT INTO votes (id, vote, seq, voted_at)
     SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::bigint[], $4::bigint[])
     ON CONFLICT (id) DO UPDATE SET vote = EXCLUDED.vote, seq = EXCLUDED.seq, voted_at = EXCLUDED.voted_at
     WHERE (votes.seq, votes.voted_at) < (EXCLUDED.seq, EXCLUDED.voted_at)`,
    values: [rows.map((r) => r.voterId), rows.map((r) => r.vote), rows.map((r) => String(r.seq)), rows.map((r) => String(r.votedAt))],
  });
  return result.rowCount ?? 0;
}
