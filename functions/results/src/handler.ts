import pg from 'pg';
import { HttpError, json, type FunctionDefinition } from '@platform/function-contract';

let db: pg.Pool | undefined;

/** The original's query, unchanged: votes per option. */
export async function tally(pool: pg.Pool): Promise<{ a: number; b: number }> {
  const { rows } = await pool.query<{ vote: string; count: number }>('SELECT vote, COUNT(id)::int AS count FROM votes GROUP BY vote');
  const scores = { a: 0, b: 0 };
  for (const row of rows) if (row.vote === 'a' || row.vote === 'b') scores[row.vote] = row.count;
  return scores;
}

export const definition: FunctionDefinition = {
  async setup(context) {
    // The database as the role that may only read votes (infra/migrations), never its owner.
    db = new pg.Pool({ connectionString: context.secret('votes-reader-url'), max: 4 });
    // A pooled connection that drops (database restart) is replaced on next use, not fatal.
    db.on('error', (error) => context.log.warn({ err: error }, 'database connection lost'));
  },
  async handler(request, context) {
    if (request.method !== 'GET') throw new HttpError(405, 'use GET', { allow: 'GET' });
    const headers = { 'cache-control': 'no-store' };
    if (request.path === '/options') return json(200, { a: context.env.OPTION_A, b: context.env.OPTION_B }, headers);
    if (request.path !== '/') throw new HttpError(404, `no such path ${JSON.stringify(request.path.slice(0, 60))}: use / or /options`);
    return json(200, await tally(db!), headers);
  },
  async teardown() {
    await db?.end();
  },
};
