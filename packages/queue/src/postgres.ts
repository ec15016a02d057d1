// The PostgreSQL adapters, loaded only by a process that uses PostgreSQL.
export { PostgresQueue } from './postgres-queue.js';
export { PostgresEventBus, MAX_NOTIFY_PAYLOAD_BYTES } from './postgres-events.js';
