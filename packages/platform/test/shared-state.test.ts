import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import pg from 'pg';
import { createTestDatabase } from '@platform/test-services';
import { migratePlatform } from '../src/store/migrate.js';
import { PostgresCallRecords } from '../src/store/postgres-calls.js';
import { PostgresRateLimitStore } from '../src/store/postgres-rate-limits.js';
import type { CallPhase, CallWrite } from '../src/store/state.js';
import type { CallRecord, CallState } from '../src/calls.js';

// The PostgreSQL adapters of the shared state on a real database: each edge is an adapter of its own.
let database: { url: string; drop(): Promise<void> };
const pools: pg.Pool[] = [];
const errors: Error[] = [];
/** A pool, as one edge has. */
const edgePool = () => {
  const pool = new pg.Pool({ connectionString: database.url, max: 4 });
  // As an edge's pool does: a connection the server ends (the database dropped at the end) is reported, not fatal.
  pool.on('error', () => {});
  pools.push(pool);
  return pool;
};
const records = (pool = edgePool()) => new PostgresCallRecords(pool, 60, (error) => errors.push(error));

beforeAll(async () => {
  database = await createTestDatabase(process.env.DATABASE_URL!);
  await migratePlatform(database.url);
});
afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
  await database?.drop();
});

const write = (callId: string, attempts: number, phase: CallPhase, status: CallState, more: Partial<CallRecord> = {}): CallWrite => ({
  phase,
  record: { callId, function: 'f', status, acceptedAt: new Date(0).toISOString(), updatedAt: new Date().toISOString(), attempts, ...more },
});

describe('call records in PostgreSQL', () => {
  // Break it catches: one statement per record (every accepted call a round trip of its own).
  it('writes the records put while a write is in flight together, in the next write', async () => {
    const pool = edgePool();
    const query = vi.spyOn(pool, 'query');
    const store = records(pool);
    const ids = Array.from({ length: 500 }, (_, i) => `batched-${i}`);
    // The first record goes alone, at once; the 499 put while it is written go together after it.
    store.put(write(ids[0]!, 0, 0, 'queued'));
    const first = store.flush();
    await new Promise((r) => setImmediate(r));
    expect(query.mock.calls.length).toBe(1);
    await Promise.all([
      first,
      ...ids.slice(1).map((id) => {
        store.put(write(id, 0, 0, 'queued'));
        return store.flush();
      }),
    ]);
    expect(query.mock.calls.length).toBe(2);
    const found = await Promise.all(ids.map((id) => store.get(id)));
    expect(found.every((r) => r?.status === 'queued')).toBe(true);
    expect(errors).toEqual([]);
  });

  // Break it catches: a plain upsert, the last write landing (a late `running` or `accepted` stepping a settled call back).
  it('never lets an earlier point of a call replace a later one, whichever edge writes last', async () => {
    const [runner, acceptor] = [records(), records()];
    runner.put(write('late', 1, 2, 'succeeded', { result: { status: 200, headers: {}, body: 'done' } }));
    await runner.flush();
    acceptor.put(write('late', 0, 0, 'queued'));
    acceptor.put(write('late', 1, 1, 'running')); // the same edge: the later of its two is kept
    await acceptor.flush();
    expect(await runner.get('late')).toMatchObject({ status: 'succeeded', attempts: 1, result: { body: 'done' } });
    // A later attempt does replace it, and what the earlier one answered goes with it.
    acceptor.put(write('late', 2, 1, 'running'));
    await acceptor.flush();
    const retried = await runner.get('late');
    expect(retried).toMatchObject({ status: 'running', attempts: 2 });
    expect(retried?.result).toBeUndefined();
  });

  // Break it catches: answers passed to PostgreSQL as they are (a NUL or half a surrogate pair fails the write of the whole batch); such an id asked for (an error).
  it('stores answers holding characters PostgreSQL refuses, and the rest of their batch', async () => {
    const store = records();
    store.put(write('odd', 1, 2, 'succeeded', { result: { status: 200, headers: { 'x-odd': ['a\0b'] }, body: 'a\0b\uD800c\uDC00d😀' }, error: 'e\0' }));
    store.put(write('plain', 1, 2, 'succeeded'));
    await store.flush();
    expect(await store.get('odd')).toMatchObject({ result: { headers: { 'x-odd': ['a\uFFFDb'] }, body: 'a\uFFFDb\uFFFDc\uFFFDd😀' }, error: 'e\uFFFD' });
    expect(await store.get('plain')).toMatchObject({ status: 'succeeded' });
    // An id holding them was never stored: asking for it is no error.
    expect(await store.get('odd\0')).toBeUndefined();
    expect(await store.get('odd\uD800')).toBeUndefined();
  });
});

describe('rate-limit counters in PostgreSQL', () => {
  // Break it catches: a window that never ends (a client limited for good), or counters of one edge only.
  it('counts the hits of every edge into one window per key, then starts a new window', async () => {
    const [one, other] = [new PostgresRateLimitStore(edgePool(), 'f:address:', 600), new PostgresRateLimitStore(edgePool(), 'f:address:', 600)];
    const hits: number[] = [];
    for (const store of [one, other, one]) hits.push((await store.increment('203.0.113.7')).totalHits);
    expect(hits).toEqual([1, 2, 3]);
    const info = await other.get('203.0.113.7');
    expect(info?.totalHits).toBe(3);
    expect(info!.resetTime!.getTime() - Date.now()).toBeGreaterThan(0);
    expect(info!.resetTime!.getTime() - Date.now()).toBeLessThanOrEqual(600);
    // Another limiter's counter of the same client is apart.
    expect((await new PostgresRateLimitStore(edgePool(), 'f:cookie:', 600).increment('203.0.113.7')).totalHits).toBe(1);
    await new Promise((r) => setTimeout(r, 700));
    expect(await one.get('203.0.113.7')).toBeUndefined();
    expect((await other.increment('203.0.113.7')).totalHits).toBe(1);
  });
});
