import pg from 'pg';
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pino } from 'pino';
import { loadFunctions, type FunctionManifest } from '@platform/function-contract/manifest';
import { functionDatabaseSecrets, migrate } from '@voting/database';
import { createEventBus, createQueue, type EventBus, type Queue, type QueueOptions } from '@platform/queue';
import { appProcess, createTestDatabase, freePort, type AppProcess } from '@platform/test-services';
import { createGateway, type Gateway, type GatewayOptions } from '@platform/core/gateway';
import { applyServerTimeouts } from '@platform/core/timeouts';
import { ProcessRuntime } from '@platform/core/runtimes/process';
import { DockerRuntime } from '@platform/core/runtimes/docker';
import type { Runtime, RuntimeOptions } from '@platform/core/runtimes/runtime';
import { secretResolver } from '@platform/core/secrets';
import { migratePlatform } from '@platform/core/store/migrate';
import { functionStore } from '@platform/core/store/functions';
import { votingComposition } from '../src/voting.js';

export const repoFunctions = join(import.meta.dirname, '..', '..', '..', 'functions');
export const fixtureFunctions = join(import.meta.dirname, 'fixtures', 'functions');
/** Python functions: fn new's Python template, warm and one-shot. */
export const pythonFixtureFunctions = join(import.meta.dirname, 'fixtures', 'python-functions');
/** The invoke token of test gateways: functions send it to call private functions. */
export const TEST_INVOKE_TOKEN = 'test-invoke-token';

/** Whether a process still runs. */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export interface TestGateway {
  url: string;
  databaseUrl: string;
  /** A pool on the gateway's database, for the tests' own queries. */
  db: pg.Pool;
  gateway: Gateway;
  server: Server;
  runtime: Runtime;
  queue: Queue;
  events: EventBus;
  close(): Promise<void>;
}

/**
 * A gateway on a free port with the process runtime, real functions, a fresh database (or
 * `database`, shared with other gateways as edges share one), and the queue and events on
 * PostgreSQL (or on `queueUrl`/`eventsUrl`, e.g. a real Redis). Its call records and rate-limit
 * counters are in that database.
 */
export async function startTestGateway({
  functionsDir = repoFunctions,
  queueUrl,
  eventsUrl,
  runtime: kind = 'process',
  docker,
  databaseServer = process.env.DATABASE_URL!,
  database,
  options = {},
  queueOptions = {},
  start = true,
}: {
  /** false: listening, but the gateway's start (workers, channels) left to the test. */
  start?: boolean;
  /** Queue settings (attempts, backoff, visibility timeout, onError). */
  queueOptions?: QueueOptions;
  /** More gateway options (auth, call result time, ...). */
  options?: Partial<GatewayOptions>;
  functionsDir?: string;
  queueUrl?: string;
  eventsUrl?: string;
  runtime?: 'process' | 'docker';
  /** For the docker runtime: the network and the host's address on it, which functions use. */
  docker?: { network: string; hostAddress: string };
  databaseServer?: string;
  /** An existing database to use (migrated here too), left as it is on close: several gateways on one database. */
  database?: string;
} = {}): Promise<TestGateway> {
  const db = database === undefined ? await createTestDatabase(databaseServer) : { url: database, drop: async () => {} };
  await migratePlatform(db.url);
  await migrate(db.url);
  const port = await freePort();
  const queue = await createQueue(queueUrl ?? db.url, { name: `calls-${port}`, ...queueOptions });
  const events = await createEventBus(eventsUrl ?? db.url);
  const log = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
  // Containers reach the host (gateway, database) at its address on their network.
  const seenFromFunctions = (url: string) => (docker ? url.replace('127.0.0.1', docker.hostAddress) : url);
  // The functions' database roles, as main.ts gives them.
  const databaseSecrets = Object.entries(await functionDatabaseSecrets(db.url, eventsUrl ?? db.url));
  const runtimeOptions: RuntimeOptions = {
    env: { GATEWAY_URL: seenFromFunctions(`http://127.0.0.1:${port}`) },
    secret: secretResolver('/nonexistent', {
      ...Object.fromEntries(databaseSecrets.map(([name, url]) => [name, seenFromFunctions(url)])),
      'cookie-secret': 'test-cookie-secret',
      'gateway-invoke-token': TEST_INVOKE_TOKEN,
    }),
  };
  if (kind === 'docker' && !docker) throw new Error('the docker runtime needs the docker option');
  const runtime: Runtime =
    kind === 'docker' ? new DockerRuntime({ ...runtimeOptions, network: docker!.network, owner: `test-${port}` }) : new ProcessRuntime(runtimeOptions);
  const gateway = await createGateway({
    functions: await loadFunctions(functionsDir),
    runtime,
    queue,
    events,
    log,
    ...(functionsDir === repoFunctions ? votingComposition : {}),
    invokeToken: TEST_INVOKE_TOKEN,
    databaseUrl: db.url,
    // Deploys kept in the test's database, code from its functions folder, images as the app allows.
    controller: { store: functionStore(db.url), functionsDir, images: ['voting/fn-*'], maxTimeoutSeconds: 29 },
    ...options,
  });
  const server: Server = createServer(gateway.listener);
  applyServerTimeouts(server, gateway.timeouts);
  await new Promise<void>((resolve) => server.listen(port, docker ? '0.0.0.0' : '127.0.0.1', resolve));
  gateway.attachSockets(server);
  if (start) await gateway.start();
  const pool = new pg.Pool({ connectionString: db.url });
  return {
    url: `http://127.0.0.1:${port}`,
    databaseUrl: db.url,
    db: pool,
    gateway,
    server,
    runtime,
    queue,
    events,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await gateway.close();
      await runtime.close();
      await Promise.all([queue.close(), events.close(), pool.end()]);
      await db.drop();
    },
  };
}

/**
 * A functions folder in a temporary directory: the manifests of `from`, each changed by `change`,
 * plus `extra` manifests (with their entry module's path); every entry module stays where it is.
 */
export async function functionsFolder(
  from: string,
  change: (manifest: FunctionManifest) => FunctionManifest = (m) => m,
  extra: Array<{ manifest: FunctionManifest; main: string }> = [],
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'functions-'));
  const add = async (manifest: FunctionManifest, main: string) => {
    await mkdir(join(dir, manifest.name));
    await writeFile(join(dir, manifest.name, 'function.json'), JSON.stringify({ ...manifest, main: relative(join(dir, manifest.name), main) }));
  };
  for (const spec of await loadFunctions(from)) {
    const { dir: home, manifestPath: _path, ...manifest } = spec;
    await add(change(manifest), join(home, spec.main));
  }
  for (const { manifest, main } of extra) await add(manifest, main);
  return dir;
}

/** The app's functions, plus `slow`: the test handler (?sleep=ms, ?status=N) with time enough to be seen running. */
export function functionsWithSlow(): Promise<string> {
  const slow = { name: 'slow', mode: 'warm', timeoutSeconds: 25, maxConcurrency: 8, maxInstances: 1, idleSeconds: 60 } as FunctionManifest;
  return functionsFolder(repoFunctions, undefined, [{ manifest: slow, main: join(fixtureFunctions, 'handler.mjs') }]);
}

/** Two edges and a controller as processes of their own (GATEWAY_ROLE), on a database of their own, with `functionsWithSlow`. */
export async function startTier(env: Record<string, string> = {}): Promise<{ a: AppProcess; b: AppProcess; controller: AppProcess; close(): Promise<void> }> {
  const db = await createTestDatabase(process.env.DATABASE_URL!);
  const functionsDir = await functionsWithSlow();
  const shared = { DATABASE_URL: db.url, FUNCTIONS_DIR: functionsDir, ...env };
  const [a, b] = (await Promise.all([0, 1].map(() => appProcess({ env: { ...shared, GATEWAY_ROLE: 'edge' } })))) as [AppProcess, AppProcess];
  const controller = await appProcess({ env: { ...shared, GATEWAY_ROLE: 'controller', FUNCTION_GATEWAY_URL: b.url } });
  const close = async () => {
    await Promise.all([a, b, controller].map((p) => p.close()));
    await rm(functionsDir, { recursive: true, force: true });
    await db.drop();
  };
  try {
    await controller.start();
    await Promise.all([a.start(), b.start()]);
  } catch (error) {
    await close();
    throw error;
  }
  return { a, b, controller, close };
}
