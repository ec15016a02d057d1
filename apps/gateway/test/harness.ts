import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadFunctions } from '@voting/function-contract/manifest';
import { migrate } from '@voting/database';
import { createEventBus, createQueue, type EventBus, type Queue } from '@voting/queue';
import { createTestDatabase, freePort } from '@voting/test-services';
import { createGateway, type Gateway } from '../src/gateway.js';
import { ProcessRuntime } from '../src/runtimes/process.js';
import { DockerRuntime } from '../src/runtimes/docker.js';
import type { Runtime, RuntimeOptions } from '../src/runtimes/runtime.js';
import { secretResolver } from '../src/secrets.js';

export const repoFunctions = join(import.meta.dirname, '..', '..', '..', 'functions');
export const fixtureFunctions = join(import.meta.dirname, 'fixtures', 'functions');

export interface TestGateway {
  url: string;
  databaseUrl: string;
  gateway: Gateway;
  runtime: Runtime;
  queue: Queue;
  events: EventBus;
  close(): Promise<void>;
}

/**
 * A gateway on a free port with the process runtime, real functions, a fresh database, and the
 * queue and events on PostgreSQL (or on `queueUrl`/`eventsUrl`, e.g. a real Redis).
 */
export async function startTestGateway({
  functionsDir = repoFunctions,
  queueUrl,
  eventsUrl,
  runtime: kind = 'process',
}: { functionsDir?: string; queueUrl?: string; eventsUrl?: string; runtime?: 'process' | 'docker' } = {}): Promise<TestGateway> {
  const db = await createTestDatabase(process.env.DATABASE_URL!);
  await migrate(db.url);
  const port = await freePort();
  const queue = await createQueue(queueUrl ?? db.url, { name: `calls-${port}` });
  const events = await createEventBus(eventsUrl ?? db.url);
  const log = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
  const runtimeOptions: RuntimeOptions = {
    env: { GATEWAY_URL: `http://127.0.0.1:${port}` },
    secret: secretResolver('/nonexistent', {
      'database-url': db.url,
      'events-url': eventsUrl ?? db.url,
      'cookie-secret': 'test-cookie-secret',
    }),
  };
  const runtime: Runtime =
    kind === 'docker'
      ? new DockerRuntime({ ...runtimeOptions, network: 'bridge', owner: `test-${port}` })
      : new ProcessRuntime(runtimeOptions);
  const gateway = await createGateway({
    functions: await loadFunctions(functionsDir),
    runtime,
    queue,
    events,
    log,
    channels: functionsDir === repoFunctions ? [{ event: 'scores', topic: 'votes', source: 'results' }] : [],
    aliases: functionsDir === repoFunctions ? [{ method: 'post', path: '/', function: 'vote' }] : [],
  });
  const server: Server = createServer(gateway.app);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  gateway.attachSockets(server);
  await gateway.start();
  return {
    url: `http://127.0.0.1:${port}`,
    databaseUrl: db.url,
    gateway,
    runtime,
    queue,
    events,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await gateway.close();
      await runtime.close();
      await Promise.all([queue.close(), events.close()]);
      await db.drop();
    },
  };
}
