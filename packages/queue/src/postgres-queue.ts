// Queue on PostgreSQL (tables in infra/migrations/1764000000001_queue.sql). A row is a message
// not yet acknowledged: claimed rows get locked_until, acks delete them, failures push
// available_at out by the backoff. Enqueues NOTIFY the channel below so idle consumers wake
// at once; a slower poll catches retries coming due and deliveries whose lock expired.
import pg from 'pg';
import type { BatchHandler, ConsumeOptions, Consumer, Queue, QueuedMessage, QueueOptions, ResolvedQueueOptions } from './queue.js';
import { RELEASED_ERROR, resolveQueueOptions, retryDelayMs, VISIBILITY_TIMEOUT_ERROR } from './queue.js';
import { PgListener } from './pg-listener.js';
import { checkConsumeOptions, runConsumer, type Delivery, type FailedDelivery, type MessageSource, type RunningConsumer } from './runner.js';
import { Signal } from './util.js';

/** Payload: the queue name. */
const CHANNEL = 'fn_queue';

const MESSAGE_COLUMNS = `id::text AS id, body, attempt, floor(extract(epoch FROM enqueued_at) * 1000)::float8 AS enqueued_at`;

interface MessageRow {
  id: string;
  body: string;
  attempt: number;
  enqueued_at: number;
}

const toMessage = (row: MessageRow): QueuedMessage => ({ id: row.id, body: row.body, attempt: row.attempt, enqueuedAt: row.enqueued_at });

// Insertion in input order gives ascending ids, so sorting the ids restores the caller's order.
const ENQUEUE = `
WITH added AS (
  INSERT INTO fn_queue (queue, body)
  SELECT $1, body FROM unnest($2::text[]) WITH ORDINALITY AS b(body, n) ORDER BY n
  RETURNING id
)
SELECT array_agg(id::text ORDER BY id) AS ids, pg_notify('${CHANNEL}', $1) FROM added`;

// Rows at maxAttempts are left for SWEEP, which dead-letters them once their lock expires.
const CLAIM = `
WITH next AS MATERIALIZED (
  SELECT id FROM fn_queue
  WHERE queue = $1 AND available_at <= now() AND (locked_until IS NULL OR locked_until < now()) AND attempt < $3
  ORDER BY id
  FOR UPDATE SKIP LOCKED
  LIMIT $2
)
UPDATE fn_queue q
SET attempt = q.attempt + 1, locked_until = now() + $4 * interval '1 millisecond', locked_by = $5
FROM next WHERE q.id = next.id
RETURNING q.id::text AS id, q.body, q.attempt, floor(extract(epoch FROM q.enqueued_at) * 1000)::float8 AS enqueued_at`;

const ACK = 'DELETE FROM fn_queue WHERE id = ANY($1::bigint[])';

// Only the delivery we hold (same attempt) is failed: if the lock expired and another consumer
// took the message, this late failure changes nothing. A final failure is dead-lettered at once.
const FAIL = `
WITH failed AS (
  SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::int[], $6::bool[]) AS f(id, attempt, error, delay_ms, final)
), dead AS (
  DELETE FROM fn_queue q USING failed f
  WHERE q.id = f.id AND q.attempt = f.attempt AND (q.attempt >= $5 OR f.final)
  RETURNING q.id, q.queue, q.body, q.attempt, q.enqueued_at, f.error
), buried AS (
  INSERT INTO fn_dead_letters (id, queue, body, attempt, enqueued_at, error)
  SELECT id, queue, body, attempt, enqueued_at, error FROM dead
  ON CONFLICT (id) DO NOTHING
)
UPDATE fn_queue q
SET available_at = now() + f.delay_ms * interval '1 millisecond', locked_until = NULL, locked_by = NULL, last_error = f.error
FROM failed f
WHERE q.id = f.id AND q.attempt = f.attempt AND q.attempt < $5 AND NOT f.final`;

// Dead-letters rows out of attempts that nobody holds: mostly a last delivery whose lock
// expired, but also retries left by an instance configured with a higher maxAttempts (which
// CLAIM would otherwise skip forever). Then answers how long until the next row becomes
// claimable (retry due or lock expiring), in ms; null if there is none.
const SWEEP = `
WITH expired AS (
  DELETE FROM fn_queue
  WHERE queue = $1 AND attempt >= $2 AND (locked_until IS NULL OR locked_until < now())
  RETURNING id, queue, body, attempt, enqueued_at, CASE WHEN locked_until IS NULL THEN last_error END AS error
), buried AS (
  INSERT INTO fn_dead_letters (id, queue, body, attempt, enqueued_at, error)
  SELECT id, queue, body, attempt, enqueued_at, coalesce(error, $3) FROM expired
  ON CONFLICT (id) DO NOTHING
)
SELECT (extract(epoch FROM min(GREATEST(available_at, locked_until)) - now()) * 1000)::float8 AS wait_ms
FROM fn_queue WHERE queue = $1`;

// A dead consumer's deliveries become claimable now; a last attempt among them is left to SWEEP
// (dead letters), as when its lock expires.
const RELEASE = `
WITH released AS (
  UPDATE fn_queue SET locked_until = NULL, locked_by = NULL, available_at = now(), last_error = $3
  WHERE queue = $1 AND locked_by = $2 AND locked_until > now()
  RETURNING id
)
SELECT count(*)::int AS n, pg_notify('${CHANNEL}', $1) FROM released`;

/** Inserts in flight at once from one queue instance; further enqueues wait and share the next. */
const MAX_CONCURRENT_INSERTS = 4;

export class PostgresQueue implements Queue {
  readonly options: ResolvedQueueOptions;
  readonly pool: pg.Pool;
  private readonly listener: PgListener;
  private listening: Promise<unknown> | undefined;
  /** Wake-ups of this instance's idle consumers. */
  private readonly signals = new Set<Signal>();
  private readonly consumers = new Set<RunningConsumer>();
  private closing = false;
  private readonly pending: Array<{ body: string; resolve: (id: string) => void; reject: (error: unknown) => void }> = [];
  private flushing = 0;

  get maxAttempts(): number {
    return this.options.maxAttempts;
  }

  constructor(url: string, options: QueueOptions = {}) {
    this.options = resolveQueueOptions(options);
    this.pool = new pg.Pool({ connectionString: url, max: 10 });
    // An idle pooled connection that dies emits here; without a listener it would crash the process.
    this.pool.on('error', (error) => this.options.onError(error));
    this.listener = new PgListener(url, this.options.onError, () => this.wakeAll());
  }

  /**
   * Group commit: calls made while inserts are in flight share the next INSERT (one commit,
   * one fsync), so many concurrent enqueues cost a few round trips, and a lone one no wait.
   */
  enqueue(body: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.pending.push({ body, resolve, reject });
      if (this.pending.length === 1) queueMicrotask(() => this.flush());
    });
  }

  private flush(): void {
    if (this.flushing >= MAX_CONCURRENT_INSERTS || this.pending.length === 0) return;
    const batch = this.pending.splice(0, 5_000);
    this.flushing++;
    this.enqueueMany(batch.map((p) => p.body))
      .then(
        (ids) => {
          for (const [i, p] of batch.entries()) p.resolve(ids[i]!);
        },
        (error: unknown) => {
          for (const p of batch) p.reject(error);
        },
      )
      .finally(() => {
        this.flushing--;
        this.flush();
      });
  }

  async enqueueMany(bodies: string[]): Promise<string[]> {
    if (bodies.length === 0) return [];
    const { rows } = await this.pool.query<{ ids: string[] }>({ name: 'fn-queue-enqueue', text: ENQUEUE, values: [this.options.name, bodies] });
    return rows[0]!.ids;
  }

  async depth(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM fn_queue WHERE queue = $1', [this.options.name]);
    return rows[0]!.n;
  }

  async deadLetters(limit = 100): Promise<Array<QueuedMessage & { error: string }>> {
    const { rows } = await this.pool.query<MessageRow & { error: string }>(
      `SELECT ${MESSAGE_COLUMNS}, error FROM fn_dead_letters WHERE queue = $1 ORDER BY dead_at, id LIMIT $2`,
      [this.options.name, limit],
    );
    return rows.map((row) => ({ ...toMessage(row), error: row.error }));
  }

  async release(consumer: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(RELEASE, [this.options.name, consumer, RELEASED_ERROR]);
    return rows[0]?.n ?? 0;
  }

  consume(handler: BatchHandler, options: ConsumeOptions): Consumer {
    if (this.closing) throw new Error('queue is closed');
    checkConsumeOptions(options);
    const consumer = runConsumer(new PostgresSource(this, options.consumer), handler, options, this.options.onError);
    this.consumers.add(consumer);
    return {
      stop: async () => {
        await consumer.stop();
        this.consumers.delete(consumer);
      },
    };
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await Promise.all([...this.consumers].map((c) => c.stop(this.options.visibilityTimeoutMs)));
    this.consumers.clear();
    await this.listener.close();
    await this.pool.end();
  }

  /** LISTEN before the first claim, so a message enqueued in between still wakes us. */
  startListening(): Promise<unknown> {
    this.listening ??= this.listener
      .listen(CHANNEL, (queue) => {
        if (queue === this.options.name) this.wakeAll();
      })
      .catch((error: unknown) => {
        this.listening = undefined;
        throw error;
      });
    return this.listening;
  }

  addSignal(signal: Signal): () => void {
    this.signals.add(signal);
    return () => this.signals.delete(signal);
  }

  wakeAll(): void {
    for (const signal of this.signals) signal.notify();
  }
}

class PostgresSource implements MessageSource<null> {
  private readonly signal = new Signal();
  private readonly removeSignal: () => void;
  private stopped = false;
  /** The last claim took fewer rows than asked: every claimable row then. */
  private drained = false;
  private sweptAt = 0;

  constructor(
    private readonly queue: PostgresQueue,
    private readonly consumer: string,
  ) {
    this.removeSignal = queue.addSignal(this.signal);
  }

  async fetch(max: number): Promise<Array<Delivery<null>>> {
    const { options, pool } = this.queue;
    await this.queue.startListening();
    // After a claim that took every claimable row, the next claim waits for news (an enqueue or a
    // failure wakes the signal; reset before that claim, so none is missed) or the poll interval
    // (retries coming due, locks expiring): a claim that would find nothing costs a statement.
    if (this.drained) {
      this.drained = false;
      await this.signal.wait(options.pollIntervalMs);
    }
    this.signal.reset();
    const { rows } = await pool.query<MessageRow>({
      name: 'fn-queue-claim',
      text: CLAIM,
      values: [options.name, max, options.maxAttempts, options.visibilityTimeoutMs, this.consumer],
    });
    if (rows.length > 0) {
      this.drained = rows.length < max;
      // Under steady load no claim comes back empty: last attempts whose lock expired still go
      // to the dead letters once per poll interval.
      if (Date.now() - this.sweptAt >= options.pollIntervalMs) await this.sweep();
      rows.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
      return rows.map((row) => ({ message: toMessage(row), ref: null }));
    }
    if (this.stopped) return [];
    const untilDue = await this.sweep();
    // At least a few ms: rows can look due while another consumer's claim still holds them.
    await this.signal.wait(Math.min(options.pollIntervalMs, Math.max(5, Math.ceil(untilDue))));
    return [];
  }

  /** Dead-letters last attempts nobody holds; answers how long until the next row is claimable (ms). */
  private async sweep(): Promise<number> {
    const { options, pool } = this.queue;
    this.sweptAt = Date.now();
    const { rows } = await pool.query<{ wait_ms: number | null }>({
      name: 'fn-queue-sweep',
      text: SWEEP,
      values: [options.name, options.maxAttempts, VISIBILITY_TIMEOUT_ERROR],
    });
    return rows[0]?.wait_ms ?? Infinity;
  }

  interrupt(): void {
    this.stopped = true;
    this.signal.notify();
  }

  async settle(acked: Array<Delivery<null>>, failed: Array<FailedDelivery<null>>): Promise<void> {
    const { options, pool } = this.queue;
    const work: Array<Promise<unknown>> = [];
    if (acked.length > 0) {
      work.push(pool.query({ name: 'fn-queue-ack', text: ACK, values: [acked.map((d) => d.message.id)] }));
    }
    if (failed.length > 0) {
      const messages = failed.map((f) => f.delivery.message);
      work.push(
        pool.query({
          name: 'fn-queue-fail',
          text: FAIL,
          values: [
            messages.map((m) => m.id),
            messages.map((m) => m.attempt),
            failed.map((f) => f.error),
            messages.map((m) => retryDelayMs(m.attempt, options.retryBackoffMs)),
            options.maxAttempts,
            failed.map((f) => f.final),
          ],
        }),
      );
    }
    await Promise.all(work);
    // Idle consumers here re-read when the new retries are due.
    if (failed.length > 0) this.queue.wakeAll();
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.removeSignal();
  }
}
