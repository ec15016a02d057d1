// The async invocation queue: the port the gateway codes against. Adapters live one per file
// (redis-queue.ts, postgres-queue.ts) and are picked from the URL by createQueue in index.ts.

export interface QueuedMessage {
  id: string;
  body: string;
  /** 1 on first delivery, +1 on every redelivery (failure or visibility timeout). */
  attempt: number;
  /** When the message was first enqueued, ms since the epoch (the store's clock). */
  enqueuedAt: number;
}

/** Every message of the batch not listed in `failed` is acknowledged. */
export interface BatchOutcome {
  failed?: FailedMessage[];
}

export interface FailedMessage {
  id: string;
  error: string;
  /** No attempt would go otherwise (e.g. its input was refused): to the dead letters now, whatever attempts are left. */
  final?: boolean;
}

export type BatchHandler = (messages: QueuedMessage[]) => Promise<BatchOutcome | void>;

export interface ConsumeOptions {
  /** This consumer's name, unique per process. */
  consumer: string;
  /** Most messages per handler call (default 100). */
  batchSize?: number;
  /** Handler calls in flight at once (default 4). */
  concurrency?: number;
  /**
   * While a handler call is running and the queue had no more, how long the next fetch waits at
   * most for it to end, gathering the messages that come meanwhile into one batch (default 20 ms).
   */
  gatherMs?: number;
}

export interface Consumer {
  /** Stops fetching and waits for the handler calls in flight. */
  stop(): Promise<void>;
}

export interface QueueOptions {
  /** Logical queue name (default 'calls'): the Redis stream key, the PostgreSQL `queue` column. */
  name?: string;
  /** Failed attempts before a message goes to the dead letters (default `queueDefaults.maxAttempts`). */
  maxAttempts?: number;
  /** Retry backoff after the first failure, doubled per attempt and capped at 30 s (default `queueDefaults.retryBackoffMs`). */
  retryBackoffMs?: number;
  /** A delivered message not acknowledged within this is redelivered (default `queueDefaults.visibilityTimeoutMs`). */
  visibilityTimeoutMs?: number;
  /**
   * Longest an idle consumer goes without looking for retries come due and reclaimable
   * messages (default 1000). New messages wake consumers at once regardless.
   */
  pollIntervalMs?: number;
  /** Errors a caller cannot see otherwise: lost connections, failed acks (default console.warn). */
  onError?: (error: Error) => void;
}

export interface Queue {
  /** Deliveries of a message at most: after a failed last one it goes to the dead letters. */
  readonly maxAttempts: number;
  /** Resolves once the message is stored; returns its id. */
  enqueue(body: string): Promise<string>;
  /** Stores all bodies in one round trip; ids in the order of `bodies`. */
  enqueueMany(bodies: string[]): Promise<string[]>;
  consume(handler: BatchHandler, options: ConsumeOptions): Consumer;
  /** Messages not yet acknowledged: waiting, in flight, or waiting for a retry. Dead letters excluded. */
  depth(): Promise<number>;
  /** Messages that failed maxAttempts times, oldest first, with their last error. */
  deadLetters(limit?: number): Promise<Array<QueuedMessage & { error: string }>>;
  /**
   * The consumer named is known to be dead: the messages delivered to it and not settled count
   * as a failed attempt now (redelivered at once, or dead-lettered after the last), rather than
   * after visibilityTimeoutMs. Answers how many. Never call it for a live consumer.
   */
  release(consumer: string): Promise<number>;
  /**
   * Stops consumers and closes connections. Handler calls in flight get up to
   * visibilityTimeoutMs to finish; after that their messages belong to other consumers anyway.
   */
  close(): Promise<void>;
}

export type ResolvedQueueOptions = Required<QueueOptions>;

/** The error a released message's attempt is recorded with. */
export const RELEASED_ERROR = 'its consumer died';

/**
 * The one definition of the queue's defaults, for the adapters and for the settings of whoever
 * configures them: 10 attempts from 500 ms cover about two minutes of failures.
 */
export const queueDefaults = {
  name: 'calls',
  maxAttempts: 10,
  retryBackoffMs: 500,
  visibilityTimeoutMs: 30_000,
  pollIntervalMs: 1_000,
} as const;

/** Error recorded when a delivery was neither acknowledged nor failed in time. */
export const VISIBILITY_TIMEOUT_ERROR = 'not acknowledged within the visibility timeout (consumer gone or handler too slow)';

const MAX_BACKOFF_MS = 30_000;

export function resolveQueueOptions(options: QueueOptions = {}): ResolvedQueueOptions {
  const resolved: ResolvedQueueOptions = {
    name: options.name ?? queueDefaults.name,
    maxAttempts: options.maxAttempts ?? queueDefaults.maxAttempts,
    retryBackoffMs: options.retryBackoffMs ?? queueDefaults.retryBackoffMs,
    visibilityTimeoutMs: options.visibilityTimeoutMs ?? queueDefaults.visibilityTimeoutMs,
    pollIntervalMs: options.pollIntervalMs ?? queueDefaults.pollIntervalMs,
    onError: options.onError ?? ((error) => console.warn(`queue: ${error.message}`)),
  };
  // The name ends up in Redis keys and NOTIFY payloads: keep it plain.
  if (!/^[A-Za-z0-9._:-]{1,100}$/.test(resolved.name)) {
    throw new Error(`invalid queue name ${JSON.stringify(resolved.name)}: use 1-100 letters, digits, '.', '_', ':' or '-'`);
  }
  for (const key of ['maxAttempts', 'retryBackoffMs', 'visibilityTimeoutMs', 'pollIntervalMs'] as const) {
    const value = resolved[key];
    if (!Number.isFinite(value) || value < (key === 'maxAttempts' || key === 'visibilityTimeoutMs' ? 1 : 0)) {
      throw new Error(`queue option ${key} must be a positive number, got ${String(value)}`);
    }
  }
  return resolved;
}

/** Delay before retrying after failed attempt `attempt` (1-based). */
export function retryDelayMs(attempt: number, baseMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempt - 1), MAX_BACKOFF_MS);
}
