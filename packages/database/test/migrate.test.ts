import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase } from '@platform/test-services';
import { migrate } from '../src/index.js';

describe('migrate', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    db = await createTestDatabase(process.env.DATABASE_URL!);
  });
  afterAll(async () => db.drop());

  it('creates the original votes table, and a second run applies nothing', async () => {
    const first = await migrate(db.url);
    expect(first.length).toBeGreaterThan(0);
    expect(await migrate(db.url)).toEqual([]);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query("INSERT INTO votes (id, vote) VALUES ('v1', 'a'), ('v2', 'b'), ('v3', 'a')");
      const { rows } = await client.query('SELECT vote, COUNT(id)::int AS n FROM votes GROUP BY vote ORDER BY vote');
      expect(rows).toEqual([
        { vote: 'a', n: 2 },
        { vote: 'b', n: 1 },
      ]);
    } finally {
      await client.end();
    }
  });

  it('runs safely from several processes at once', async () => {
    const other = await createTestDatabase(process.env.DATABASE_URL!);
    try {
      const results = await Promise.all([migrate(other.url), migrate(other.url), migrate(other.url)]);
      expect(results.flat().length).toBe(results.find((r) => r.length > 0)!.length);
    } finally {
      await other.drop();
    }
  });
});
