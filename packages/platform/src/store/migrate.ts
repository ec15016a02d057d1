import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';

/** The platform's own tables (members, call records, shared secrets, counters), apart from any app's. */
export const platformMigrationsDir = fileURLToPath(new URL('../../migrations', import.meta.url));

/**
 * Brings the platform's tables up to date in the shared PostgreSQL database. Its own history table
 * keeps it apart from the app's migrations; the advisory lock lets many edges start at once.
 */
export async function migratePlatform(
  databaseUrl: string,
  { dir = platformMigrationsDir, log = () => {} }: { dir?: string; log?: (message: string) => void } = {},
): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir,
    direction: 'up',
    migrationsTable: 'platform_migrations',
    checkOrder: true,
    advisoryLockMode: 'wait',
    log,
  });
  return applied.map((migration) => migration.name);
}
