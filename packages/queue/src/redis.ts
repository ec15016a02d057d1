// The Redis adapters, loaded only by a process that uses Redis.
export { RedisQueue } from './redis-queue.js';
export { RedisEventBus } from './redis-events.js';
