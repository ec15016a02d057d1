import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueue, queueDefaults } from '@platform/queue';
import { waitUntil } from '@platform/test-services';
import { CallStore } from '@platform/core/calls';
import { loadConfig } from '../src/config.js';
import { fixtureFunctions, startTestGateway, type TestGateway } from './harness.js';

// Breaks it catches: a call store with a limit of attempts of its own (it said `failed` after 5
// while the queue went on retrying), or settings whose default differs from the queue's.
describe('async call status and the queue agree on attempts', () => {
  let t: TestGateway;
  // Not the default, so that a second definition of the limit anywhere shows.
  const maxAttempts = queueDefaults.maxAttempts - 3;
  beforeAll(async () => {
    t = await startTestGateway({ functionsDir: fixtureFunctions, queueOptions: { maxAttempts, retryBackoffMs: 50 } });
  });
  afterAll(async () => t.close());

  it('is `queued` while the queue retries and `failed` exactly when it gives up', async () => {
    const accepted = await fetch(`${t.url}/async-function/crashy?status=500`, { method: 'POST', body: 'x' });
    expect(accepted.status).toBe(202);
    const { callId } = (await accepted.json()) as { callId: string };
    const seen: Array<{ status: string; attempts: number }> = [];
    const deadline = Date.now() + 30_000;
    for (;;) {
      const call = (await (await fetch(`${t.url}/system/calls/${callId}`)).json()) as { status: string; attempts: number };
      seen.push(call);
      if (call.status === 'failed') break;
      if (Date.now() > deadline) throw new Error(`the call never failed: last ${JSON.stringify(call)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    // Every record before the last attempt said it would be tried again.
    expect(seen.filter((c) => c.status === 'failed')).toEqual([{ ...seen.at(-1) }]);
    expect(seen.at(-1)).toMatchObject({ status: 'failed', attempts: maxAttempts });
    expect(seen.some((c) => c.status === 'queued' && c.attempts > 1)).toBe(true);
    // ...and the queue did give up on it: it is in the dead letters, not waiting for a retry.
    const dead = await t.queue.deadLetters(10);
    expect(dead.map((m) => JSON.parse(m.body).callId)).toContain(callId);
    expect(await t.queue.depth()).toBe(0);
  });

  // Break it catches: a retried call keeping the answer of its failed attempt, so that it is
  // reported failed although its retry succeeded (as a call retried inside another's batch is:
  // the batch's answer is recorded for its first call only).
  it('forgets the answer of a failed attempt when the call is tried again', async () => {
    const queue = await createQueue(t.databaseUrl, { name: `store-${Date.now()}`, retryBackoffMs: 10 });
    const store = new CallStore(60);
    const call = (callId: string) => ({
      callId,
      function: 'crashy',
      request: { method: 'POST', path: '/', query: {}, headers: {}, body: '' },
      acceptedAt: Date.now(),
    });
    await queue.enqueueMany([JSON.stringify(call('first')), JSON.stringify(call('second'))]);
    const consumer = store.recordingQueue(queue).consume(
      async (messages) => {
        // The first attempt answers 502 for each call; the retry succeeds without an answer of its own.
        const failed = messages.filter((m) => m.attempt === 1);
        for (const m of failed) store.finished((JSON.parse(m.body) as { callId: string }).callId, 'crashy', { status: 502, body: 'down' });
        return { failed: failed.map((m) => ({ id: m.id, error: 'answered 502' })) };
      },
      { consumer: 'store-test' },
    );
    try {
      await waitUntil(() => ['first', 'second'].every((id) => store.get(id)?.attempts === 2 && store.get(id)?.status !== 'running'), {
        what: 'both calls retried',
      });
      for (const id of ['first', 'second']) expect(store.get(id)).toMatchObject({ status: 'succeeded', attempts: 2, result: undefined });
    } finally {
      await consumer.stop();
      await queue.close();
    }
  });

  it('takes its default from the queue’s, one definition', () => {
    expect(loadConfig({}).QUEUE_MAX_ATTEMPTS).toBe(queueDefaults.maxAttempts);
    expect(loadConfig({}).QUEUE_RETRY_BACKOFF_MS).toBe(queueDefaults.retryBackoffMs);
    expect(loadConfig({}).QUEUE_VISIBILITY_SECONDS * 1_000).toBe(queueDefaults.visibilityTimeoutMs);
  });
});
