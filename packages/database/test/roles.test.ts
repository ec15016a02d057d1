import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '@platform/test-services';
import { functionDatabaseSecrets, functionRoles, migrate } from '../src/index.js';

/** The platform's own tables (platform_secrets holds its tokens), as the gateway makes them. */
const platformMigrations = fileURLToPath(new URL('../../platform/migrations', import.meta.url));

/** Runs one statement logged in with `url`; its rows, or the error PostgreSQL answered. */
async function as(url: string, sql: string): Promise<{ rows?: unknown[]; code?: string; message?: string }> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    return { rows: (await client.query(sql)).rows };
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    return { code, message };
  } finally {
    await client.end().catch(() => {});
  }
}

describe("the functions' database roles", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let secrets: Record<string, string>;
  beforeAll(async () => {
    db = await createTestDatabase(process.env.DATABASE_URL!);
    await runner({ databaseUrl: db.url, dir: platformMigrations, direction: 'up', migrationsTable: 'platform_migrations', log: () => {} });
    await migrate(db.url);
    await as(db.url, "INSERT INTO platform_secrets (name, value) VALUES ('gateway-admin-token', 'the-admin-token')");
    // What the gateway gives the functions (apps/gateway/src/main.ts).
    secrets = await functionDatabaseSecrets(db.url, db.url);
  });
  afterAll(async () => db.drop());

  // Break it catches: the functions given the owner's URL (asRole keeping the owner's login), or
  // the migration granting the writer more than its upsert (e.g. ALL on every table).
  it("let record-vote upsert votes and publish events, and refuse it the platform's tables, the server's programs and deletes", async () => {
    const writer = secrets['votes-writer-url']!;
    expect(new URL(writer).username).not.toBe(new URL(db.url).username);
    // Its need: record-vote's upsert (functions/record-vote/src/record.ts), and NOTIFY.
    const upsert = `INSERT INTO votes (id, vote, seq, voted_at) VALUES ('aaaaaaa1', 'a', 1, 1)
      ON CONFLICT (id) DO UPDATE SET vote = EXCLUDED.vote, seq = EXCLUDED.seq, voted_at = EXCLUDED.voted_at
      WHERE (votes.seq, votes.voted_at) < (EXCLUDED.seq, EXCLUDED.voted_at)`;
    expect(await as(writer, upsert)).toMatchObject({ rows: [] });
    expect(await as(writer, upsert.replace("'a', 1, 1", "'b', 2, 2"))).toMatchObject({ rows: [] });
    expect((await as(db.url, 'SELECT id, vote FROM votes')).rows).toEqual([{ id: 'aaaaaaa1', vote: 'b' }]);
    expect(await as(secrets['votes-writer-events-url']!, "SELECT pg_notify('votes', '')")).toMatchObject({ rows: [{ pg_notify: '' }] });

    const file = join(tmpdir(), `roles-test-${randomBytes(6).toString('hex')}`);
    for (const sql of [
      'SELECT * FROM platform_secrets',
      `COPY (SELECT 1) TO PROGRAM 'touch ${file}'`,
      'DELETE FROM votes',
      'SELECT * FROM fn_queue',
      'SELECT password FROM function_roles',
      'CREATE TABLE taken (id int)',
    ]) {
      expect({ sql, ...(await as(writer, sql)) }).toMatchObject({ sql, code: '42501' });
    }
    expect(existsSync(file)).toBe(false);
    // The events URL logs in as the same role: no more there.
    expect(await as(secrets['votes-writer-events-url']!, 'SELECT * FROM platform_secrets')).toMatchObject({ code: '42501' });
  });

  // Break it catches: the reader granted what the writer has (INSERT on votes), or the owner's URL.
  it('let results read the votes, and refuse it writes, the platform tables and the server programs', async () => {
    const reader = secrets['votes-reader-url']!;
    await as(db.url, "INSERT INTO votes (id, vote) VALUES ('bbbbbbb1', 'a') ON CONFLICT DO NOTHING");
    expect((await as(reader, 'SELECT vote, COUNT(id)::int AS n FROM votes GROUP BY vote')).rows).toContainEqual({ vote: 'a', n: 1 });
    for (const sql of [
      "INSERT INTO votes (id, vote) VALUES ('ccccccc1', 'a')",
      "UPDATE votes SET vote = 'b'",
      'SELECT * FROM platform_secrets',
      `COPY (SELECT 1) TO PROGRAM 'true'`,
    ]) {
      expect({ sql, ...(await as(reader, sql)) }).toMatchObject({ sql, code: '42501' });
    }
  });

  // Break it catches: CONNECT left to PUBLIC, so a function's role reaches another app's database on the server.
  it("keep each database's roles out of the other databases on the server", async () => {
    const other = await createTestDatabase(process.env.DATABASE_URL!);
    try {
      await migrate(other.url);
      const intoOther = new URL(secrets['votes-writer-url']!);
      intoOther.pathname = new URL(other.url).pathname;
      expect(await as(intoOther.toString(), 'SELECT 1')).toMatchObject({ code: '42501' });
    } finally {
      await other.drop();
    }
  });

  // Break it catches: a new password at every start, which locks out the instances still running.
  it('keep their passwords across starts, and hand a Redis event bus URL through as it is', async () => {
    const again = await functionDatabaseSecrets(db.url, 'redis://:pw@127.0.0.1:6379');
    expect(again['votes-writer-url']).toBe(secrets['votes-writer-url']);
    expect(again['votes-writer-events-url']).toBe('redis://:pw@127.0.0.1:6379');
    // Starts at the same moment take turns.
    const logins = await Promise.all([functionRoles(db.url), functionRoles(db.url), functionRoles(db.url)]);
    expect(new Set(logins.map((l) => l.get('votes-reader')!.password)).size).toBe(1);
    expect(await as(secrets['votes-reader-url']!, 'SELECT 1 AS one')).toMatchObject({ rows: [{ one: 1 }] });
  });
});
