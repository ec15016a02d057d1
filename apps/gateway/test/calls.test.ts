import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createQueue, queueDefaults } from '@platform/queue';
import { createTestDatabase, waitUntil } from '@platform/test-services';
import { CallStore } from '@platform/core/calls';
import { sharedState } from '@platform/core/store/index';
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

  // Break it catches: a retried call keeping its failed attempt's answer, so reported failed although its retry succeeded (memory and database alike).
  // (A call retried inside another's batch gets no answer of its own: the batch's answer is recorded for its first call only.)
  for (const kind of ['memory', 'postgres'] as const) {
    it(`forgets the answer of a failed attempt when the call is tried again (${kind})`, async () => {
      const queue = await createQueue(t.databaseUrl, { name: `store-${kind}-${Date.now()}`, retryBackoffMs: 10 });
      const state = sharedState(kind === 'memory' ? undefined : t.databaseUrl, { callResultSeconds: 60 });
      const store = new CallStore(60, state.calls);
      const call = (callId: string) => ({
        callId,
        function: 'crashy',
        request: { method: 'POST', path: '/', query: {}, headers: {}, body: '' },
        acceptedAt: Date.now(),
      });
      const ids = [`first-${kind}`, `second-${kind}`];
      await queue.enqueueMany(ids.map((id) => JSON.stringify(call(id))));
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
        await waitUntil(async () => (await Promise.all(ids.map((id) => store.read(id)))).every((r) => r?.attempts === 2 && r.status !== 'running'), {
          what: 'both calls retried',
        });
        for (const id of ids) {
          const record = await store.read(id);
          expect(record).toMatchObject({ status: 'succeeded', attempts: 2 });
          expect(record?.result).toBeUndefined();
        }
      } finally {
        await consumer.stop();
        await queue.close();
        await state.close();
      }
    });
  }

  it('takes its default from the queue’s, one definition', () => {
    expect(loadConfig({}).QUEUE_MAX_ATTEMPTS).toBe(queueDefaults.maxAttempts);
    expect(loadConfig({}).QUEUE_RETRY_BACKOFF_MS).toBe(queueDefaults.retryBackoffMs);
    expect(loadConfig({}).QUEUE_VISIBILITY_SECONDS * 1_000).toBe(queueDefaults.visibilityTimeoutMs);
  });
});

describe('async call records shared by the edges on one database', () => {
  let db: { url: string; drop(): Promise<void> };
  const edges: TestGateway[] = [];
  /** An edge on the shared database and queue; `worker` false: it accepts and answers, never runs calls. */
  const edge = async (worker: boolean) => {
    const t = await startTestGateway({ functionsDir: fixtureFunctions, database: db.url, queueOptions: { name: 'shared-calls' }, start: worker });
    edges.push(t);
    return t;
  };
  const close = async (t: TestGateway) => {
    edges.splice(edges.indexOf(t), 1);
    await t.close();
  };
  const read = async (t: TestGateway, callId: string) => {
    const response = await fetch(`${t.url}/system/calls/${callId}`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> & { status?: string } };
  };
  let a: TestGateway;
  let b: TestGateway;
  beforeAll(async () => {
    db = await createTestDatabase(process.env.DATABASE_URL!);
    a = await edge(true);
    b = await edge(false);
  });
  afterAll(async () => {
    for (const t of [...edges]) await close(t);
    await db?.drop();
  });

  // Break it catches: the 202 sent before the call's record is stored (another edge answers 404 for a call its caller was told of).
  it('stores the record of an accepted call before answering 202, so that any edge answers for it at once', async () => {
    // Writes of call records wait for this lock; reads do not.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE platform_calls IN EXCLUSIVE MODE');
    let answered = false;
    const accepted = fetch(`${a.url}/async-function/crashy`, { method: 'POST', body: 'first' }).finally(() => (answered = true));
    await new Promise((r) => setTimeout(r, 500));
    const answeredWhileBlocked = answered;
    await blocker.query('COMMIT');
    await blocker.end();
    const response = await accepted;
    expect(answeredWhileBlocked).toBe(false);
    expect(response.status).toBe(202);
    const { callId } = (await response.json()) as { callId: string };
    const seen = await read(b, callId);
    expect(seen.status).toBe(200);
    expect(seen.body).toMatchObject({ callId, function: 'crashy' });
  });

  // Break it catches: records kept by the gateway that wrote them (the other edge answers 404, and no one once it is gone).
  it('answers with the status and result of a call another edge accepted and ran, also once that edge is gone', async () => {
    const response = await fetch(`${a.url}/async-function/crashy/echo`, { method: 'POST', body: 'hello' });
    expect(response.status).toBe(202);
    const { callId } = (await response.json()) as { callId: string };
    const done = await waitUntil(
      async () => {
        const seen = await read(b, callId);
        return seen.body.status === 'succeeded' && seen.body;
      },
      { what: 'the other edge to answer succeeded' },
    );
    expect(done).toMatchObject({ callId, function: 'crashy', status: 'succeeded', attempts: 1, result: { status: 200 } });
    expect(JSON.parse((done.result as { body: string }).body)).toMatchObject({ path: '/echo', body: 'hello' });
    expect((await read(a, callId)).body).toEqual(done);
    await close(a);
    expect(await read(b, callId)).toEqual({ status: 200, body: done });
    // Records survive restarts: a gateway started afterwards on the database answers the same.
    await close(b);
    const restarted = await edge(false);
    expect(await read(restarted, callId)).toEqual({ status: 200, body: done });
  });

  // Break it catches: records answered or kept past callResultSeconds (expired rows never pruned).
  it('keeps a record callResultSeconds after its last change, then prunes it', async () => {
    const t = await startTestGateway({ functionsDir: fixtureFunctions, options: { callResultSeconds: 1 } });
    try {
      const { callId } = (await (await fetch(`${t.url}/async-function/crashy`, { method: 'POST' })).json()) as { callId: string };
      await waitUntil(async () => (await read(t, callId)).body.status === 'succeeded', { what: 'the call to succeed' });
      await waitUntil(async () => (await read(t, callId)).status === 404, { timeoutMs: 5_000, what: 'the record to expire' });
      const rows = async () => (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM platform_calls')).rows[0]!.n;
      await waitUntil(async () => (await rows()) === 0, { timeoutMs: 5_000, what: 'the expired record to be deleted' });
    } finally {
      await t.close();
    }
  });
});
