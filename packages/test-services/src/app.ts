// The app as `npm start` runs it (`apps/gateway/dist/main.js`: embedded PostgreSQL unless
// DATABASE_URL is given, process runtime unless RUNTIME is), on free ports with its data in a
// temporary folder: for browser tests, fault tests and benches. It can be stopped with any
// signal and started again on the same ports and data (a gateway crash and its restart).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitUntil } from './net.js';

/** The repository's root (packages/test-services/dist → ../../..). */
export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

export interface AppProcess {
  /** The vote side, e.g. http://127.0.0.1:PORT. */
  url: string;
  port: number;
  /** The result side. */
  resultUrl: string;
  /** Its data folder (embedded PostgreSQL's data and password, generated secrets). */
  dataDir: string;
  /** Where its embedded PostgreSQL listens (when no DATABASE_URL is given). */
  embeddedPostgresPort: number;
  /** Everything it printed (stdout and stderr) across restarts, when `output` is 'capture'. */
  output(): string;
  pid(): number | undefined;
  /** Starts it (again) and waits until /healthz answers. */
  start(): Promise<void>;
  /** Sends a signal and waits for the exit; resolves with the exit code (null if killed by it). */
  signal(signal: NodeJS.Signals): Promise<number | null>;
  /** Kills it if it still runs and removes its data folder. */
  close(): Promise<void>;
}

export async function appProcess({
  root = repoRoot,
  env: settings = {},
  nodeArgs = [],
  output = 'capture',
  startTimeoutMs = 60_000,
}: {
  /** The copy of the repository to run, built and installed (default: this one). */
  root?: string;
  /** Settings over the defaults; DATABASE_URL, QUEUE_URL, EVENTS_URL, REDIS_URL and RUNTIME only when given here. */
  env?: NodeJS.ProcessEnv;
  /** Options for the gateway's node, e.g. --cpu-prof (not allowed in NODE_OPTIONS). */
  nodeArgs?: string[];
  output?: 'capture' | 'inherit' | 'ignore';
  startTimeoutMs?: number;
} = {}): Promise<AppProcess> {
  const [port, resultPort, pgPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const dataDir = await mkdtemp(join(tmpdir(), 'voting-app-'));
  await chmod(dataDir, 0o755); // reachable by the postgres user the embedded server runs as
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    RESULT_PORT: String(resultPort),
    EMBEDDED_POSTGRES_PORT: String(pgPort),
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    ...settings,
  };
  for (const name of ['DATABASE_URL', 'QUEUE_URL', 'EVENTS_URL', 'REDIS_URL', 'RUNTIME']) if (!(name in settings)) delete env[name];
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let exited: Promise<number | null> = Promise.resolve(null);
  let printed = '';
  const self: AppProcess = {
    url,
    port,
    resultUrl: `http://127.0.0.1:${resultPort}`,
    dataDir,
    embeddedPostgresPort: pgPort,
    output: () => printed,
    pid: () => child?.pid,
    async start() {
      const stdio = output === 'capture' ? 'pipe' : output;
      const started = spawn(process.execPath, [...nodeArgs, join(root, 'apps/gateway/dist/main.js')], { cwd: root, env, stdio: ['ignore', stdio, stdio] });
      child = started;
      started.stdout?.on('data', (chunk: Buffer) => (printed += chunk.toString()));
      started.stderr?.on('data', (chunk: Buffer) => (printed += chunk.toString()));
      exited = new Promise((resolve) => started.once('exit', (code) => resolve(code)));
      // An app that exits during start-up fails the start at once, with what it printed.
      const died = exited.then((code) => {
        throw new Error(`the app exited with ${code} during start-up${printed ? `:\n${printed.slice(-2_000)}` : ''}`);
      });
      const ready = waitUntil(async () => (await fetch(`${url}/healthz`)).ok, { timeoutMs: startTimeoutMs, intervalMs: 100, what: 'the app to start' });
      died.catch(() => {});
      await Promise.race([ready, died]);
    },
    async signal(signal) {
      if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
      child.kill(signal);
      return exited;
    },
    async close() {
      await self.signal('SIGKILL');
      // A killed app's PostgreSQL may still be writing its last files for a moment.
      await rm(dataDir, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
    },
  };
  return self;
}
