// The voting app, composed: database, queue and events, the functions, the gateway and the pages.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadFunctions } from '@platform/function-contract/manifest';
import { migrate, redact, startEmbeddedPostgres, waitForPostgres } from '@voting/database';
import { createEventBus, createQueue } from '@platform/queue';
import { loadConfig } from './config.js';
import { applyServerTimeouts, createGateway, createRuntime, localSecret, migratePlatform, secretResolver, site, type Runtime } from '@platform/core';
import { voterOfCookie, votingComposition } from './voting.js';
import { startBanner } from './banner.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const config = loadConfig();
const log = pino({ name: 'gateway', level: config.LOG_LEVEL });
/** What main() started, for shutdown() to stop in the right order. */
const started: {
  embedded?: { stop(): Promise<void> };
  queue?: { close(): Promise<void> };
  events?: { close(): Promise<void> };
  runtime?: Runtime;
  gateway?: Awaited<ReturnType<typeof createGateway>>;
  servers: Server[];
} = { servers: [] };

/** The password from a secret file goes into the URL here, never into a settings file. */
function withPassword(url: string, passwordFile: string | undefined): string {
  if (!passwordFile) return url;
  const parsed = new URL(url);
  parsed.password = encodeURIComponent(readFileSync(passwordFile, 'utf8').trim());
  return parsed.toString();
}

async function listen(server: Server, port: number): Promise<void> {
  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, config.HOST, () => resolvePromise());
  });
}

async function main(): Promise<void> {
  // Manifests first: a bad one stops the start before anything is started.
  const functions = await loadFunctions(config.FUNCTIONS_DIR ? resolve(config.FUNCTIONS_DIR) : join(root, 'functions'), root);
  const dataDir = resolve(root, config.DATA_DIR);
  let databaseUrl = config.DATABASE_URL && withPassword(config.DATABASE_URL, config.DATABASE_PASSWORD_FILE);
  if (databaseUrl) {
    await waitForPostgres(databaseUrl, { onWait: (e) => log.warn(`waiting for PostgreSQL at ${redact(databaseUrl!)}: ${e.message}`) });
  } else {
    const embedded = await startEmbeddedPostgres({
      dir: join(dataDir, 'postgres'),
      port: config.EMBEDDED_POSTGRES_PORT,
      log: (message) => log.info(message),
    });
    started.embedded = embedded;
    databaseUrl = embedded.url;
    log.info(`embedded PostgreSQL on port ${config.EMBEDDED_POSTGRES_PORT}, data in ${embedded.dataDir}`);
  }
  const applied = [
    ...(await migratePlatform(databaseUrl, { dir: join(root, 'packages/platform/migrations') })),
    ...(await migrate(databaseUrl, { dir: join(root, 'infra/migrations') })),
  ];
  if (applied.length) log.info(`applied migrations: ${applied.join(', ')}`);

  const queueUrl = config.QUEUE_URL ?? databaseUrl;
  const eventsUrl = config.EVENTS_URL ?? databaseUrl;
  // Lost connections are worth a warning, except while stopping (Ctrl-C stops the database too).
  const onError = (error: Error) => (stopping ? log.debug(error.message) : log.warn(error.message));
  // A call running longer than the visibility timeout would be delivered twice while it runs.
  const longest = Math.max(...functions.map((f) => f.timeoutSeconds));
  if (config.QUEUE_VISIBILITY_SECONDS <= longest) {
    throw new Error(`QUEUE_VISIBILITY_SECONDS (${config.QUEUE_VISIBILITY_SECONDS}) must be longer than the longest function timeout (${longest} s)`);
  }
  const queue = await createQueue(queueUrl, {
    onError,
    maxAttempts: config.QUEUE_MAX_ATTEMPTS,
    retryBackoffMs: config.QUEUE_RETRY_BACKOFF_MS,
    visibilityTimeoutMs: config.QUEUE_VISIBILITY_SECONDS * 1_000,
  });
  const events = await createEventBus(eventsUrl, { onError });
  Object.assign(started, { queue, events });

  const secretsDir = config.SECRETS_DIR;
  const fixed: Record<string, string> = { 'database-url': databaseUrl, 'events-url': eventsUrl };
  const configured = secretResolver(secretsDir, fixed);
  if (configured('cookie-secret') === undefined) fixed['cookie-secret'] = await localSecret(dataDir, 'cookie-secret');
  // Lets functions invoke private functions; one per start unless configured (several gateways share one).
  if (configured('gateway-invoke-token') === undefined) fixed['gateway-invoke-token'] = randomBytes(32).toString('base64url');
  const invokeToken = configured('gateway-invoke-token')!;
  // Credentials of /system mutations: the secret `gateway-admin-token` (or $GATEWAY_ADMIN_TOKEN), else one made here.
  let adminToken = configured('gateway-admin-token');
  let adminTokenFile: string | undefined;
  if (adminToken === undefined) {
    adminToken = await localSecret(dataDir, 'gateway-admin-token');
    adminTokenFile = join(dataDir, 'secrets', 'gateway-admin-token');
  }

  const runtime = await createRuntime(config.RUNTIME, {
    env: { OPTION_A: config.OPTION_A, OPTION_B: config.OPTION_B, GATEWAY_URL: config.FUNCTION_GATEWAY_URL ?? `http://127.0.0.1:${config.PORT}` },
    secret: secretResolver(secretsDir, fixed),
    dockerNetwork: config.DOCKER_NETWORK,
    swarm: { prefix: config.SWARM_PREFIX, callbackPort: config.SWARM_CALLBACK_PORT },
    log: (message) => log.info(message),
  });
  const gateway = await createGateway({
    functions,
    runtime,
    queue,
    events,
    log,
    bodyLimit: config.BODY_LIMIT,
    socketOrigins: config.SOCKET_ORIGINS,
    maxLiveClients: config.MAX_LIVE_CLIENTS,
    ...votingComposition,
    auth: { token: adminToken, user: config.GATEWAY_ADMIN_USER, readPublic: config.SYSTEM_READ_PUBLIC },
    callResultSeconds: config.CALL_RESULT_SECONDS,
    invokeToken,
    trustProxy: config.TRUST_PROXY,
    callbackAllowedHosts: config.CALLBACK_ALLOWED_HOSTS,
    rateLimits: [
      {
        function: 'vote',
        windowSeconds: config.VOTE_RATE_LIMIT_WINDOW_SECONDS,
        perAddress: config.VOTE_RATE_LIMIT_PER_ADDRESS,
        exemptAddresses: config.VOTE_RATE_LIMIT_EXEMPT_ADDRESSES,
        perCookie: { name: 'voter_id', limit: config.VOTE_RATE_LIMIT_PER_VOTER, holder: voterOfCookie },
      },
    ],
  });
  Object.assign(started, { runtime, gateway });

  const votePages = join(root, 'apps/vote/dist');
  const resultPages = join(root, 'apps/result/dist');
  const dashboard = join(root, 'apps/dashboard/dist');
  const servers = [
    createServer(
      { maxHeaderSize: config.MAX_HEADER_BYTES },
      site(
        [
          ['/system/ui', dashboard],
          ['/result', resultPages],
          ['/', votePages],
        ],
        gateway.app,
      ),
    ),
    createServer({ maxHeaderSize: config.MAX_HEADER_BYTES }, site([['/', resultPages]], gateway.app)),
  ];
  for (const server of servers) applyServerTimeouts(server, gateway.timeouts);
  await listen(servers[0]!, config.PORT);
  await listen(servers[1]!, config.RESULT_PORT);
  for (const server of servers) gateway.attachSockets(server);
  started.servers = servers;
  await gateway.start();

  process.stdout.write(
    startBanner({
      host: config.HOST,
      port: config.PORT,
      resultPort: config.RESULT_PORT,
      runtime: runtime.kind,
      functions: functions.map((f) => f.name),
      adminTokenFile,
    }),
  );
}

let stopping = false;
async function shutdown(signal: string, code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info(`${signal}: stopping`);
  // Calls in flight get SHUTDOWN_GRACE_SECONDS; stopping the rest gets 10 s more at most.
  const graceMs = config.SHUTDOWN_GRACE_SECONDS * 1_000;
  const force = setTimeout(() => {
    log.error(`shutdown took longer than ${config.SHUTDOWN_GRACE_SECONDS + 10} s; exiting anyway`);
    process.exit(1);
  }, graceMs + 10_000).unref();
  const step = async (name: string, action: () => Promise<unknown> | undefined) => {
    await Promise.resolve(action()).catch((error: unknown) => log.warn({ err: error }, `${name} failed`));
  };
  // Stop taking requests, drain calls in flight, drop what is left, then the backing services.
  for (const server of started.servers) {
    server.close();
    server.closeIdleConnections();
  }
  await step('draining the gateway', () => {
    if (!started.gateway) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        log.warn(`calls still in flight after ${config.SHUTDOWN_GRACE_SECONDS} s (SHUTDOWN_GRACE_SECONDS): stopping their instances`);
        resolve();
      }, graceMs);
    });
    return Promise.race([started.gateway.close(), deadline]).finally(() => clearTimeout(timer));
  });
  for (const server of started.servers) server.closeAllConnections();
  await step('stopping function instances', () => started.runtime?.close());
  await step('closing the queue', () => started.queue?.close());
  await step('closing the event bus', () => started.events?.close());
  await step('stopping PostgreSQL', () => started.embedded?.stop());
  clearTimeout(force);
  process.exit(code);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

main().catch(async (error: unknown) => {
  log.fatal((error as Error).message);
  await shutdown('start-up failure', 1);
});
