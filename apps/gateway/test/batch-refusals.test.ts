import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '@platform/test-services';
import { startTestGateway, TEST_INVOKE_TOKEN, type TestGateway } from './harness.js';

// The real record-vote (batchSize 500) behind the real async worker, on PostgreSQL: 51 calls queued
// before the worker starts, so that it takes them as one batch, one of them a message record-vote refuses.
describe('a refused call in a batch of queued calls', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ start: false, queueOptions: { retryBackoffMs: 20 } });
  });
  afterAll(async () => t.close());

  const enqueue = async (message: unknown) => {
    // As the vote function queues its calls: JSON, with the platform's invoke token.
    const response = await fetch(`${t.url}/async-function/record-vote`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-invoke-token': TEST_INVOKE_TOKEN },
      body: JSON.stringify(message),
    });
    expect(response.status).toBe(202);
    return ((await response.json()) as { callId: string }).callId;
  };

  // Break it catches: a refused batch settled as a whole (each call acknowledged with the batch's 400,
  // so no vote recorded), or retried as a whole (all 51 dead-lettered together after the retries).
  it('goes to the dead letters alone, and the other calls of its batch are recorded', async () => {
    const voter = (i: number) => i.toString(16).padStart(16, '0');
    const good = await Promise.all(Array.from({ length: 50 }, (_, i) => enqueue({ voterId: voter(i), vote: i % 2 ? 'a' : 'b', seq: 1, votedAt: Date.now() })));
    const bad = await enqueue({ voterId: 'not hex', vote: 'c', seq: 1, votedAt: Date.now() });
    expect(await t.queue.depth()).toBe(51);
    await t.gateway.start();

    const dead = await waitUntil(
      async () => {
        const letters = await t.queue.deadLetters(100);
        return letters.length > 0 && (await t.queue.depth()) === 0 ? letters : undefined;
      },
      { what: 'the queue settled with a dead letter', timeoutMs: 30_000 },
    );
    expect(dead.map((d) => JSON.parse(d.body).callId)).toEqual([bad]);
    expect(dead[0]).toMatchObject({ attempt: 1, error: expect.stringContaining('record-vote answered 400') });
    const { rows } = await t.db.query<{ id: string }>('SELECT id FROM votes ORDER BY id');
    expect(rows.map((r) => r.id)).toEqual(Array.from({ length: 50 }, (_, i) => voter(i)));

    // Each call's record says how it ended: the refused one failed with its own answer, at its first attempt.
    const record = async (callId: string) => (await (await fetch(`${t.url}/system/calls/${callId}`)).json()) as { status: string; attempts: number };
    const records = await waitUntil(
      async () => {
        const all = await Promise.all([...good, bad].map(record));
        return all.every((r) => r.status !== 'running') ? all : undefined;
      },
      { what: 'every call record settled' },
    );
    expect(records.slice(0, 50).every((r) => r.status === 'succeeded')).toBe(true);
    expect(records[50]).toMatchObject({ status: 'failed', attempts: 1, result: { status: 400 } });
  });
});
