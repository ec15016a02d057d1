import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase } from '@platform/test-services';
import { functionDatabaseSecrets, migrate } from '@voting/database';
import { parseMessages } from '../src/message.js';
import { recordVotes } from '../src/record.js';

describe('recordVotes (real PostgreSQL)', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  /** The owner's pool, to look at the table. */
  let pool: pg.Pool;
  /** The function's own: logged in as the role it gets (votes-writer-url), which may only upsert votes. */
  let writer: pg.Pool;
  beforeAll(async () => {
    db = await createTestDatabase(process.env.DATABASE_URL!);
    await migrate(db.url);
    pool = new pg.Pool({ connectionString: db.url });
    writer = new pg.Pool({ connectionString: (await functionDatabaseSecrets(db.url, db.url))['votes-writer-url'] });
  });
  afterAll(async () => {
    await Promise.all([pool.end(), writer.end()]);
    await db.drop();
  });
  beforeEach(async () => {
    await pool.query('TRUNCATE votes');
  });
  const rows = async () => (await pool.query('SELECT id, vote FROM votes ORDER BY id')).rows;

  it('inserts a new voter and updates on a newer vote', async () => {
    expect(await recordVotes(writer, [{ voterId: 'aaaaaaa1', vote: 'a', seq: 1, votedAt: 1 }])).toBe(1);
    expect(await recordVotes(writer, [{ voterId: 'aaaaaaa1', vote: 'b', seq: 2, votedAt: 2 }])).toBe(1);
    expect(await rows()).toEqual([{ id: 'aaaaaaa1', vote: 'b' }]);
  });

  it('ignores a redelivered or older message', async () => {
    await recordVotes(writer, [{ voterId: 'bbbbbbb1', vote: 'b', seq: 20, votedAt: 20 }]);
    expect(await recordVotes(writer, [{ voterId: 'bbbbbbb1', vote: 'b', seq: 20, votedAt: 20 }])).toBe(0);
    expect(await recordVotes(writer, [{ voterId: 'bbbbbbb1', vote: 'a', seq: 10, votedAt: 10 }])).toBe(0);
    expect(await rows()).toEqual([{ id: 'bbbbbbb1', vote: 'b' }]);
  });

  it('keeps the newest vote of a voter within one batch, whatever the order', async () => {
    await recordVotes(writer, [
      { voterId: 'ccccccc1', vote: 'a', seq: 3, votedAt: 3 },
      { voterId: 'ccccccc1', vote: 'b', seq: 5, votedAt: 5 },
      { voterId: 'ccccccc1', vote: 'a', seq: 4, votedAt: 4 },
      { voterId: 'ccccccc2', vote: 'a', seq: 1, votedAt: 1 },
    ]);
    expect(await rows()).toEqual([
      { id: 'ccccccc1', vote: 'b' },
      { id: 'ccccccc2', vote: 'a' },
    ]);
  });

  const voteOf = async (id: string) => (await pool.query('SELECT vote FROM votes WHERE id = $1', [id])).rows[0]?.vote;

  // Break it catches: ordering by votedAt (a clock) instead of the voter's own count.
  it('follows seq, not clocks: a later vote stamped by a slower clock still wins', async () => {
    const earlier = { voterId: 'eeeeeee1', vote: 'a' as const, seq: 1, votedAt: 9_000_000 };
    const later = { voterId: 'eeeeeee1', vote: 'b' as const, seq: 2, votedAt: 1_000_000 };
    await recordVotes(writer, [later]);
    await recordVotes(writer, [earlier]);
    expect(await voteOf('eeeeeee1')).toBe('b');
    await recordVotes(writer, [earlier, later].reverse());
    expect(await voteOf('eeeeeee1')).toBe('b');
  });

  it('breaks a tie of seq (one browser’s votes sent at once) by votedAt, the same way every time', async () => {
    const first = { voterId: 'eeeeeee2', vote: 'a' as const, seq: 4, votedAt: 10 };
    const second = { voterId: 'eeeeeee2', vote: 'b' as const, seq: 4, votedAt: 11 };
    await recordVotes(writer, [second]);
    await recordVotes(writer, [first]);
    expect(await voteOf('eeeeeee2')).toBe('b');
  });

  it('ranks messages queued without seq (by an older vote function) below any since', async () => {
    const [old] = parseMessages('{"voterId":"eeeeeee3","vote":"a","votedAt":99999999999}');
    expect(old!.seq).toBe(0);
    await recordVotes(writer, [{ voterId: 'eeeeeee3', vote: 'b', seq: 1, votedAt: 1 }]);
    await recordVotes(writer, [old!]);
    expect(await voteOf('eeeeeee3')).toBe('b');
  });

  it('counts each voter once however often and in whatever order messages come', async () => {
    const messages = Array.from({ length: 200 }, (_, i) => ({
      voterId: `d${String(i % 50).padStart(7, '0')}`,
      vote: (i % 3 === 0 ? 'a' : 'b') as 'a' | 'b',
      seq: i,
      votedAt: i,
    }));
    const shuffled = [...messages, ...messages].sort(() => Math.random() - 0.5);
    for (let i = 0; i < shuffled.length; i += 37) await recordVotes(writer, shuffled.slice(i, i + 37));
    const expected = new Map(messages.map((m) => [m.voterId, m.vote])); // later i wins
    const { rows: tallies } = await pool.query('SELECT vote, COUNT(id)::int AS n FROM votes GROUP BY vote ORDER BY vote');
    const a = [...expected.values()].filter((v) => v === 'a').length;
    expect(tallies).toEqual([
      { vote: 'a', n: a },
      { vote: 'b', n: 50 - a },
    ]);
  });
});

describe('parseMessages', () => {
  it('accepts one message or a batch', () => {
    expect(parseMessages('{"voterId":"abcdef12","vote":"a","votedAt":1}')).toHaveLength(1);
    expect(parseMessages('[{"voterId":"abcdef12","vote":"a","votedAt":1},{"voterId":"abcdef13","vote":"b","votedAt":2}]')).toHaveLength(2);
  });
  it.each([
    '',
    'nope',
    '[]',
    '{"voterId":"x","vote":"a","votedAt":1}',
    '{"voterId":"abcdef12","vote":"a","seq":-1,"votedAt":1}',
    '{"voterId":"abcdef12","vote":"a","seq":"2","votedAt":1}',
    '{"voterId":"abcdef12","vote":"c","votedAt":1}',
    '{"voterId":"abcdef12","vote":"a","votedAt":1.5}',
  ])('rejects %j with a 400', (body) => {
    expect(() => parseMessages(body)).toThrow(expect.objectContaining({ status: 400 }));
  });
});
