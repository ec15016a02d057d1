import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase } from '@platform/test-services';
import { functionDatabaseSecrets, migrate } from '@voting/database';
import { tally } from '../src/handler.js';

describe('tally (real PostgreSQL)', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  /** The owner's pool, to fill the table. */
  let pool: pg.Pool;
  /** The function's own: logged in as the role it gets (votes-reader-url), which may only read votes. */
  let reader: pg.Pool;
  beforeAll(async () => {
    db = await createTestDatabase(process.env.DATABASE_URL!);
    await migrate(db.url);
    pool = new pg.Pool({ connectionString: db.url });
    reader = new pg.Pool({ connectionString: (await functionDatabaseSecrets(db.url, db.url))['votes-reader-url'] });
  });
  afterAll(async () => {
    await Promise.all([pool.end(), reader.end()]);
    await db.drop();
  });

  it('is zero for both options with no votes', async () => {
    expect(await tally(reader)).toEqual({ a: 0, b: 0 });
  });

  it('counts the rows of the original votes table', async () => {
    await pool.query("INSERT INTO votes (id, vote) VALUES ('x1','a'), ('x2','b'), ('x3','a'), ('x4','zzz')");
    expect(await tally(reader)).toEqual({ a: 2, b: 1 });
  });
});
