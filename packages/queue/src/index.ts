// @platform/queue: the async invocation queue and the event bus, each a port with a Redis and a
// PostgreSQL adapter. The URL's scheme picks the adapter.
import type { EventBus } from './events.js';
import type { Queue, QueueOptions } from './queue.js';

export type { BatchHandler, BatchOutcome, ConsumeOptions, Consumer, FailedMessage, Queue, QueuedMessage, QueueOptions } from './queue.js';
export { queueDefaults } from './queue.js';
export type { EventBus } from './events.js';
// The adapters are `@platform/queue/redis` and `@platform/queue/postgres`, imported on demand:
// loading the Redis client costs a function's cold start some 250 ms it need not pay.

type Kind = 'redis' | 'postgres';

/** Only the scheme is ever put in an error: the rest of the URL may hold a password. */
function kindOf(url: string, what: string): Kind {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'redis' || scheme === 'rediss') return 'redis';
  if (scheme === 'postgres' || scheme === 'postgresql') return 'postgres';
  const found = scheme === undefined ? 'a URL without a scheme' : `URL scheme "${scheme}:"`;
  throw new Error(`${what}: unsupported ${found}; use redis://, rediss://, postgres:// or postgresql://`);
}

/** A queue on Redis Streams (redis://, rediss://) or PostgreSQL tables (postgres://, postgresql://). */
export async function createQueue(url: string, options: QueueOptions = {}): Promise<Queue> {
  if (kindOf(url, 'createQueue') === 'redis') return new (await import('./redis.js')).RedisQueue(url, options);
  return new (await import('./postgres.js')).PostgresQueue(url, options);
}

/** An event bus on Redis pub/sub (redis://, rediss://) or LISTEN/NOTIFY (postgres://, postgresql://). */
export async function createEventBus(url: string, options: { onError?: (error: Error) => void } = {}): Promise<EventBus> {
  if (kindOf(url, 'createEventBus') === 'redis') return new (await import('./redis.js')).RedisEventBus(url, options.onError);
  return new (await import('./postgres.js')).PostgresEventBus(url, options.onError);
}
