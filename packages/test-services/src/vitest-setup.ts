// vitest globalSetup: one PostgreSQL and one Redis for a package's whole test run. Test files
// read their URLs from process.env (inherited by the workers) and make their own databases.
import { startPostgres } from './postgres.js';
import { startRedis } from './redis.js';

export default async function setup(): Promise<() => Promise<void>> {
  const [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
  process.env.DATABASE_URL = postgres.url;
  process.env.REDIS_URL = redis.url;
  return async () => {
    await Promise.all([postgres.stop(), redis.stop()]);
  };
}
