import { appendFile, chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadEmbeddedPostgres } from '@platform/embedded-postgres';
import pg from 'pg';
import { freePort } from './net.js';

export interface PostgresServer {
  /** URL of the server's `postgres` database. */
  url: string;
  stop(): Promise<void>;
}

/** A private server that a fault test may stop and start again, its data kept in between. */
export interface RestartablePostgres extends PostgresServer {
  /** Stops the server process (fast shutdown); the data stays. */
  pause(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  resume(): Promise<void>;
}

/**
 * Uses DATABASE_URL when set, otherwise starts a throwaway embedded PostgreSQL. `listen` adds
 * addresses to 127.0.0.1 (e.g. a Docker bridge's, for containers) and always starts a private
 * server, since a configured one may not be reachable from there.
 */
export async function startPostgres({ listen = [] }: { listen?: string[] } = {}): Promise<PostgresServer> {
  if (process.env.DATABASE_URL && listen.length === 0) return { url: process.env.DATABASE_URL, stop: async () => {} };
  return startPrivatePostgres({ listen });
}

/** Always a throwaway embedded PostgreSQL of its own, which can be paused and resumed (fault tests). */
export async function startPrivatePostgres({ listen = [] }: { listen?: string[] } = {}): Promise<RestartablePostgres> {
  const parent = await mkdtemp(join(tmpdir(), 'voting-pg-'));
  await chmod(parent, 0o755); // the postgres user must reach the data dir inside it
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: join(parent, 'data'),
    port,
    user: 'postgres',
    password,
    // Kept on stop, so pause/resume keeps the data; stop() removes the folder itself.
    persistent: true,
    createPostgresUser: true,
    postgresFlags: ['-c', 'fsync=off', '-c', 'max_connections=300', '-c', `listen_addresses=${['127.0.0.1', ...listen].join(',')}`],
    onLog: () => {},
    onError: (error) => process.stderr.write(`embedded postgres: ${String(error)}\n`),
  });
  await server.initialise();
  if (listen.length > 0) {
    // Password logins from the subnets the server is on (the bridge's containers).
    await appendFile(join(parent, 'data', 'pg_hba.conf'), '\nhost all all samenet scram-sha-256\n');
  }
  await server.start();
  let running = true;
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: async () => {
      if (running) await server.stop();
      running = false;
      await rm(parent, { recursive: true, force: true });
    },
    pause: async () => {
      if (running) await server.stop();
      running = false;
    },
    resume: async () => {
      if (!running) await server.start();
      running = true;
    },
  };
}

/** Creates an empty database with a unique name on the server; `drop` removes it. */
export async function createTestDatabase(serverUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
