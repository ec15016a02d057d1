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
