// Real PostgreSQL and Redis servers for tests. DATABASE_URL / REDIS_URL point at servers that
// already run; without them a private embedded PostgreSQL and a redis-server on a free port are
// started. A missing server binary is an error that says what to install: tests never skip.
export { startPostgres, startPrivatePostgres, createTestDatabase, type PostgresServer, type RestartablePostgres } from './postgres.js';
export { startRedis, startPrivateRedis, type RedisServer, type RestartableRedis } from './redis.js';
export { freePort, waitUntil } from './net.js';
export { startComposeApp, type ComposeApp } from './compose.js';
export { appProcess, repoRoot, type AppProcess } from './app.js';
