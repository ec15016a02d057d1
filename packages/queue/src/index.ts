// @voting/queue: the async invocation queue and the event bus, each a port with a Redis and a
// PostgreSQL adapter. The URL's scheme picks the adapter.
import type { EventBus } from './events.js';
import type { Queue, QueueOptions } from './queue.js';
import { PostgresEventBus } from './postgres-events.js';
import { PostgresQueue } from './postgres-queue.js';
import { RedisEventBus } from './redis-events.js';
import { RedisQueue } from './redis-queue.js';

export type { BatchHandler, BatchOutcome, ConsumeOptions, Consumer, Queue, QueuedMessage, QueueOptions } from './queue.js';
export type { EventBus } from './events.js';
export { RedisQueue } from './redis-queue.js';
export { PostgresQueue } from './postgres-queue.js';
export { RedisEventBus } from './redis-events.js';
export { PostgresEventBus, MAX_NOTIFY_PAYLOAD_BYTES } from './postgres-events.js';

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
export function createQueue(url: string, options: QueueOptions = {}): Queue {
  return kindOf(url, 'createQueue') === 'redis' ? new RedisQueue(url, options) : new PostgresQueue(url, options);
}

/** An event bus on Redis pub/sub (redis://, rediss://) or LISTEN/NOTIFY (postgres://, postgresql://). */
export function createEventBus(url: string, options: { onError?: (error: Error) => void } = {}): EventBus {
  return kindOf(url, 'createEventBus') === 'redis' ? new RedisEventBus(url, options.onError) : new PostgresEventBus(url, options.onError);
}
