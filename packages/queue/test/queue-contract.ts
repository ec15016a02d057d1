// The behaviour every Queue adapter owes its callers, run against each adapter against a real
// server (redis.test.ts, postgres.test.ts).
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '@platform/test-services';
import type { Consumer, Queue, QueuedMessage, QueueOptions } from '../src/index.js';

export type MakeQueue = (options: QueueOptions & { name: string }) => Queue;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Seen extends QueuedMessage {
  at: number;
  consumer: string;
}

export function queueContract(label: string, makeQueue: MakeQueue): void {
  describe(`Queue contract: ${label}`, () => {
    const opened: Queue[] = [];
    let name = '';

    /** A queue on this test's own queue name; closed after the test. */
    function queue(options: QueueOptions = {}): Queue {
      const q = makeQueue({ onError: () => {}, ...options, name });
      opened.push(q);
      return q;
    }

    /** Consumes into `seen`; the handler's outcome for each batch comes from `decide`. */
    function record(
      q: Queue,
      seen: Seen[],
      options: { consumer?: string; batchSize?: number; concurrency?: number } = {},
      decide: (batch: QueuedMessage[]) => Promise<{ failed?: Array<{ id: string; error: string; final?: boolean }> } | void> = async () => {},
    ): Consumer {
      const consumer = options.consumer ?? 'c1';
      return q.consume(
        async (batch) => {
          for (const m of batch) seen.push({ ...m, at: Date.now(), consumer });
          return decide(batch);
        },
        { batchSize: 100, concurrency: 4, ...options, consumer },
      );
    }

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((q) => q.close()));
      name = '';
    });

    // A fresh name per test keeps tests apart on a shared server.
    const fresh = () => (name = `test-${randomBytes(5).toString('hex')}`);

    it('delivers an enqueued message once, with its id, attempt 1 and enqueue time, then acks it', async () => {
      fresh();
      const q = queue();
      const before = Date.now();
      const id = await q.enqueue('hello');
      const after = Date.now();
      expect(typeof id).toBe('string');
      expect(await q.depth()).toBe(1);
      const seen: Seen[] = [];
      record(q, seen);
      await waitUntil(async () => seen.length === 1 && (await q.depth()) === 0, { what: 'delivery and ack' });
      expect(seen[0]).toMatchObject({ id, body: 'hello', attempt: 1 });
      expect(seen[0]!.enqueuedAt).toBeGreaterThanOrEqual(before - 1_000);
      expect(seen[0]!.enqueuedAt).toBeLessThanOrEqual(after + 1_000);
      await sleep(300);
      expect(seen).toHaveLength(1);
      expect(await q.deadLetters()).toEqual([]);
    });

    it('has stored a message when enqueue resolves: another instance sees and delivers it', async () => {
      fresh();
      const producer = queue();
      const id = await producer.enqueue('durable');
      await producer.close();
      const other = queue();
      expect(await other.depth()).toBe(1);
      const seen: Seen[] = [];
      record(other, seen);
      await waitUntil(() => seen.length === 1, { what: 'delivery on the other instance' });
      expect(seen[0]).toMatchObject({ id, body: 'durable' });
    });

    it('enqueueMany stores all bodies in order and returns their ids', async () => {
      fresh();
      const q = queue();
      expect(await q.enqueueMany([])).toEqual([]);
      const bodies = Array.from({ length: 50 }, (_, i) => `body-${i}`);
      const ids = await q.enqueueMany(bodies);
      expect(ids).toHaveLength(50);
      expect(new Set(ids).size).toBe(50);
      expect(await q.depth()).toBe(50);
      const seen: Seen[] = [];
      record(q, seen);
      await waitUntil(async () => seen.length === 50 && (await q.depth()) === 0, { what: '50 deliveries' });
      const bodyById = new Map(seen.map((m) => [m.id, m.body]));
      expect(ids.map((id) => bodyById.get(id))).toEqual(bodies);
    });

    it('hands the handler at most batchSize messages at a time', async () => {
      fresh();
      const q = queue();
      await q.enqueueMany(Array.from({ length: 25 }, (_, i) => `m${i}`));
      const sizes: number[] = [];
      const seen: Seen[] = [];
      record(q, seen, { batchSize: 10, concurrency: 1 }, async (batch) => {
        sizes.push(batch.length);
      });
      await waitUntil(() => seen.length === 25, { what: '25 deliveries' });
      expect(Math.max(...sizes)).toBe(10);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(25);
      expect(new Set(seen.map((m) => m.body)).size).toBe(25);
    });

    // Break it catches: fetching each message as it comes while a batch is being handled (a fetch,
    // a handler call and a settle per message under a trickle), or waiting with nothing in flight.
    it('gathers messages that come one at a time while a batch is being handled into the next batch', async () => {
      fresh();
      const q = queue();
      const sizes: number[] = [];
      const seen: Seen[] = [];
      const consumer = q.consume(
        async (batch) => {
          sizes.push(batch.length);
          for (const m of batch) seen.push({ ...m, at: Date.now(), consumer: 'c1' });
          await sleep(400);
        },
        { consumer: 'c1', batchSize: 100, concurrency: 4, gatherMs: 300 },
      );
      try {
        const first = Date.now();
        await q.enqueue('m0');
        await waitUntil(() => seen.length === 1, { what: 'the first message' });
        // Alone, with nothing in flight: handled without waiting for others.
        expect(seen[0]!.at - first).toBeLessThan(250);
        for (let i = 1; i <= 6; i++) {
          await q.enqueue(`m${i}`);
          await sleep(10);
        }
        await waitUntil(() => seen.length === 7, { what: 'all 7 messages' });
        // Without gathering: a batch per message while 4 may run at once, e.g. [1, 1, 1, 1, 3].
        expect(sizes).toEqual([1, 6]);
      } finally {
        await consumer.stop();
      }
    });

    it('retries a failed message after the backoff with the attempt incremented', async () => {
      fresh();
      const q = queue({ retryBackoffMs: 250, maxAttempts: 3 });
      const id = await q.enqueue('flaky');
      const seen: Seen[] = [];
      record(q, seen, {}, async (batch) => {
        if (batch[0]!.attempt === 1) throw new Error('first try fails');
      });
      await waitUntil(async () => seen.length === 2 && (await q.depth()) === 0, { what: 'the retry' });
      expect(seen.map((m) => [m.id, m.body, m.attempt])).toEqual([
        [id, 'flaky', 1],
        [id, 'flaky', 2],
      ]);
      expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(240);
      expect(seen[1]!.enqueuedAt).toBe(seen[0]!.enqueuedAt);
      await sleep(300);
      expect(seen).toHaveLength(2);
      expect(await q.deadLetters()).toEqual([]);
    });

    it('after maxAttempts failures moves a message to the dead letters with its last error, never to be delivered again', async () => {
      fresh();
      const q = queue({ retryBackoffMs: 20, maxAttempts: 3 });
      const id = await q.enqueue('poison');
      const seen: Seen[] = [];
      record(q, seen, {}, async (batch) => {
        throw new Error(`boom on attempt ${batch[0]!.attempt}`);
      });
      const dead = await waitUntil(
        async () => {
          const letters = await q.deadLetters();
          return letters.length > 0 ? letters : undefined;
        },
        { what: 'a dead letter' },
      );
      expect(dead).toEqual([{ id, body: 'poison', attempt: 3, enqueuedAt: seen[0]!.enqueuedAt, error: 'boom on attempt 3' }]);
      expect(seen.map((m) => m.attempt)).toEqual([1, 2, 3]);
      expect(await q.depth()).toBe(0);
      await sleep(400);
      expect(seen).toHaveLength(3);
      expect(await q.deadLetters(10)).toHaveLength(1);
    });

    // Break it catches: a final failure treated as any other (retried until maxAttempts).
    it('moves a message failed as final to the dead letters at once, and acks the rest of its batch', async () => {
      fresh();
      const q = queue({ retryBackoffMs: 20, maxAttempts: 5 });
      const [good, bad] = await q.enqueueMany(['good', 'refused']);
      const seen: Seen[] = [];
      record(q, seen, { concurrency: 1 }, async (batch) => ({
        failed: batch.filter((m) => m.body === 'refused').map((m) => ({ id: m.id, error: 'refused: 400', final: true })),
      }));
      const dead = await waitUntil(
        async () => {
          const letters = await q.deadLetters();
          return letters.length > 0 && (await q.depth()) === 0 ? letters : undefined;
        },
        { what: 'a dead letter and nothing left' },
      );
      expect(dead).toEqual([{ id: bad, body: 'refused', attempt: 1, enqueuedAt: expect.any(Number), error: 'refused: 400' }]);
      expect(seen.map((m) => [m.id, m.attempt])).toEqual([
        [good, 1],
        [bad, 1],
      ]);
    });

    it('retries only the failed messages of a partly failed batch', async () => {
      fresh();
      const q = queue({ retryBackoffMs: 20 });
      const [a, b, c] = await q.enqueueMany(['a', 'b', 'c']);
      const seen: Seen[] = [];
      record(q, seen, { concurrency: 1 }, async (batch) => {
        const bad = batch.find((m) => m.body === 'b' && m.attempt === 1);
        return { failed: bad ? [{ id: bad.id, error: 'b is bad once' }] : [] };
      });
      await waitUntil(async () => seen.length === 4 && (await q.depth()) === 0, { what: 'the retry of b' });
      await sleep(200);
      expect(seen.map((m) => `${m.body}${m.attempt}`).sort()).toEqual(['a1', 'b1', 'b2', 'c1']);
      expect(seen.find((m) => m.attempt === 2)!.id).toBe(b);
      expect(
        seen
          .filter((m) => m.attempt === 1)
          .map((m) => m.id)
          .sort(),
      ).toEqual([a, b, c].sort());
    });

    it('lets two consumers share 500 messages, each handled and none lost', async () => {
      fresh();
      const q1 = queue();
      const q2 = queue();
      const bodies = Array.from({ length: 500 }, (_, i) => `job-${i}`);
      await q1.enqueueMany(bodies);
      const seen: Seen[] = [];
      const slow = async () => sleep(Math.random() * 4);
      record(q1, seen, { consumer: 'one', batchSize: 20, concurrency: 2 }, slow);
      record(q2, seen, { consumer: 'two', batchSize: 20, concurrency: 2 }, slow);
      await waitUntil(async () => new Set(seen.map((m) => m.body)).size === 500 && (await q1.depth()) === 0, {
        what: 'all 500 handled',
        timeoutMs: 15_000,
      });
      expect([...new Set(seen.map((m) => m.body))].sort()).toEqual([...bodies].sort());
      // Nothing failed or timed out, so nothing may have been delivered twice.
      expect(seen).toHaveLength(500);
      expect(seen.every((m) => m.attempt === 1)).toBe(true);
      const byOne = seen.filter((m) => m.consumer === 'one').length;
      expect(byOne).toBeGreaterThan(0);
      expect(byOne).toBeLessThan(500);
    });

    it("reclaims a crashed consumer's message for another consumer after the visibility timeout", async () => {
      fresh();
      const visibilityTimeoutMs = 400;
      const crashing = queue({ visibilityTimeoutMs });
      const id = await crashing.enqueue('orphan');
      const hung: Seen[] = [];
      crashing.consume(
        async (batch) => {
          for (const m of batch) hung.push({ ...m, at: Date.now(), consumer: 'crashing' });
          return new Promise<never>(() => {});
        },
        { consumer: 'crashing' },
      );
      await waitUntil(() => hung.length === 1, { what: 'the first delivery' });
      // close() gives up on the handler that never resolves; nothing was acknowledged.
      await crashing.close();
      expect(await queue().depth()).toBe(1);

      const survivor = queue({ visibilityTimeoutMs });
      const seen: Seen[] = [];
      record(survivor, seen, { consumer: 'survivor' });
      await waitUntil(async () => seen.length === 1 && (await survivor.depth()) === 0, { what: 'the reclaim', timeoutMs: 5_000 });
      expect(seen[0]).toMatchObject({ id, body: 'orphan', attempt: 2 });
      expect(seen[0]!.at - hung[0]!.at).toBeGreaterThanOrEqual(visibilityTimeoutMs - 20);
    });

    // Break it catches: release() that leaves the dead consumer's messages to the visibility timeout, or acknowledges them.
    it("hands a dead consumer's messages to another consumer at once when released, as a failed attempt", async () => {
      fresh();
      // Long enough that only a release can explain a redelivery within the wait below.
      const visibilityTimeoutMs = 8_000;
      const dying = queue({ visibilityTimeoutMs });
      const ids = await dying.enqueueMany(['one', 'two']);
      const hung: Seen[] = [];
      dying.consume(
        async (batch) => {
          for (const m of batch) hung.push({ ...m, at: Date.now(), consumer: 'dying' });
          return new Promise<never>(() => {});
        },
        // One batch at a time: with its handler hung, it fetches nothing more (as if dead).
        { consumer: 'dying', batchSize: 2, concurrency: 1 },
      );
      await waitUntil(() => hung.length === 2, { what: 'the first deliveries' });
      const survivor = queue({ visibilityTimeoutMs });
      const seen: Seen[] = [];
      record(survivor, seen, { consumer: 'survivor' });
      // Another consumer's name releases nothing; the dead one's, both.
      expect(await survivor.release('nobody')).toBe(0);
      expect(await survivor.release('dying')).toBe(2);
      await waitUntil(async () => seen.length === 2 && (await survivor.depth()) === 0, { what: 'the released messages handled', timeoutMs: 4_000 });
      expect(seen.map((m) => [m.id, m.body, m.attempt]).sort()).toEqual([
        [ids[0], 'one', 2],
        [ids[1], 'two', 2],
      ]);
      expect(await survivor.release('dying')).toBe(0);
    });

    it('dead-letters a message whose last attempt timed out', async () => {
      fresh();
      const options = { visibilityTimeoutMs: 200, maxAttempts: 1 };
      const crashing = queue(options);
      const id = await crashing.enqueue('too slow');
      let deliveries = 0;
      crashing.consume(
        async () => {
          deliveries++;
          return new Promise<never>(() => {});
        },
        { consumer: 'crashing' },
      );
      await waitUntil(() => deliveries === 1, { what: 'the delivery' });
      await crashing.close();
      const survivor = queue(options);
      const seen: Seen[] = [];
      record(survivor, seen, { consumer: 'survivor' });
      const dead = await waitUntil(
        async () => {
          const letters = await survivor.deadLetters();
          return letters.length > 0 ? letters : undefined;
        },
        { what: 'the dead letter', timeoutMs: 5_000 },
      );
      expect(dead[0]).toMatchObject({ id, body: 'too slow', attempt: 1 });
      expect(dead[0]!.error).toMatch(/visibility timeout/);
      expect(seen).toEqual([]);
      expect(await survivor.depth()).toBe(0);
    });

    it('stop() waits for the handler calls in flight, acks them and fetches no more', async () => {
      fresh();
      const q = queue();
      await q.enqueue('slow');
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const events: string[] = [];
      const seen: Seen[] = [];
      const consumer = record(q, seen, {}, async () => {
        events.push('handler started');
        await gate;
        events.push('handler done');
      });
      await waitUntil(() => seen.length === 1, { what: 'the delivery' });
      let stopped = false;
      const stopping = consumer.stop().then(() => {
        stopped = true;
        events.push('stopped');
      });
      await sleep(150);
      expect(stopped).toBe(false);
      release();
      await stopping;
      expect(events).toEqual(['handler started', 'handler done', 'stopped']);
      expect(await q.depth()).toBe(0);
      await q.enqueue('after stop');
      await sleep(300);
      expect(seen.map((m) => m.body)).toEqual(['slow']);
      expect(await q.depth()).toBe(1);
    });

    it('wakes an idle consumer as soon as a message arrives, not at the next poll', async () => {
      fresh();
      const q = queue({ pollIntervalMs: 5_000 });
      const seen: Seen[] = [];
      record(q, seen);
      await sleep(300); // idle, waiting for work
      for (let i = 0; i < 3; i++) {
        const sent = Date.now();
        await q.enqueue(`ping ${i}`);
        await waitUntil(() => seen.length === i + 1, { what: `ping ${i}`, intervalMs: 2 });
        expect(seen[i]!.at - sent).toBeLessThan(500);
        await sleep(50);
      }
    });
  });
}
