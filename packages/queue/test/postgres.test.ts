import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '@voting/database';
import { createTestDatabase, waitUntil } from '@platform/test-services';
import { createEventBus, createQueue } from '../src/index.js';
import { MAX_NOTIFY_PAYLOAD_BYTES, PostgresEventBus, PostgresQueue } from '../src/postgres.js';
import { eventsContract } from './events-contract.js';
import { queueContract } from './queue-contract.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  db = await createTestDatabase(process.env.DATABASE_URL!);
  await migrate(db.url);
});
afterAll(async () => db?.drop());

queueContract('PostgreSQL', (options) => new PostgresQueue(db.url, options));
eventsContract('PostgreSQL', () => new PostgresEventBus(db.url, () => {}));

describe('PostgreSQL adapters', () => {
  it('are what createQueue and createEventBus pick for postgres:// and postgresql:// URLs', async () => {
    const queue = await createQueue(db.url, { name: 'pick-test' });
    const events = await createEventBus(db.url.replace(/^postgres:/, 'postgresql:'));
    try {
      expect(queue).toBeInstanceOf(PostgresQueue);
      expect(events).toBeInstanceOf(PostgresEventBus);
      expect(await queue.depth()).toBe(0);
    } finally {
      await Promise.all([queue.close(), events.close()]);
    }
  });

  it('delivers payloads up to the NOTIFY limit and rejects bigger ones clearly', async () => {
    const events = await createEventBus(db.url);
    try {
      const got: string[] = [];
      await events.subscribe('big.payloads', (p) => got.push(p));
      const largest = `${'é'.repeat((MAX_NOTIFY_PAYLOAD_BYTES - 1) / 2)}x`; // 7999 bytes
      await events.publish('big.payloads', largest);
      await waitUntil(() => got.length === 1, { what: 'the large event' });
      expect(got[0]).toBe(largest);
      await expect(events.publish('big.payloads', 'x'.repeat(MAX_NOTIFY_PAYLOAD_BYTES + 1))).rejects.toThrow(/8000 bytes|at most 7999/);
    } finally {
      await events.close();
    }
  });
});

describe('PostgreSQL queue, statements per message', () => {
  // Break it catches: claiming again at once after a claim that took every row (a claim that finds
  // nothing, and a sweep after it, for every message under a steady trickle).
  it('claims once per message that arrives alone, not once more to find nothing', async () => {
    const queue = new PostgresQueue(db.url, { name: 'claims-test' });
    const statements = { claims: 0, sweeps: 0 };
    const query = queue.pool.query.bind(queue.pool) as (...args: unknown[]) => Promise<unknown>;
    (queue.pool as unknown as { query: typeof query }).query = (...args: unknown[]) => {
      const text = typeof args[0] === 'string' ? args[0] : String((args[0] as { text?: unknown }).text);
      if (text.includes('WITH next AS')) statements.claims++;
      if (text.includes('WITH expired AS')) statements.sweeps++;
      return query(...args);
    };
    const handled: string[] = [];
    const consumer = queue.consume(
      async (messages) => {
        handled.push(...messages.map((m) => m.body));
      },
      { consumer: 'claims-test-consumer', batchSize: 10 },
    );
    try {
      await waitUntil(() => statements.sweeps > 0, { what: 'the consumer to be idle' });
      const before = { ...statements };
      for (let i = 0; i < 20; i++) {
        await queue.enqueue(`m${i}`);
        await waitUntil(() => handled.length === i + 1, { what: `message ${i}` });
      }
      const claims = statements.claims - before.claims;
      const sweeps = statements.sweeps - before.sweeps;
      console.log(`20 messages one at a time: ${claims} claims, ${sweeps} sweeps`);
      expect(handled).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
      // One claim per message; a few more where the poll interval ran out in between.
      expect(claims).toBeLessThanOrEqual(24);
      expect(sweeps).toBeLessThanOrEqual(4);
    } finally {
      await consumer.stop();
      await queue.close();
    }
  });
});
