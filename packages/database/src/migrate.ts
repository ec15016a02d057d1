import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';

/** The SQL migrations under infra/migrations, the one place the schema is written down. */
export const migrationsDir = fileURLToPath(new URL('../../../infra/migrations', import.meta.url));

/**
 * Brings the database schema up to date. Safe to run from several processes at once:
 * node-pg-migrate holds an advisory lock while it works.
 */
export async function migrate(
  databaseUrl: string,
  { dir = migrationsDir, log = () => {} }: { dir?: string; log?: (message: string) => void } = {},
): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    checkOrder: true,
    // Gateways starting together wait for each other instead of failing.
    advisoryLockMode: 'wait',
    log,
  });
  return applied.map((migration) => migration.name);
}
