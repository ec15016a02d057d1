// The voting app, composed: database, queue and events, the functions, the controller that starts
// their instances, the edges that serve the pages and routes. `npm start` runs the controller in this
// process and GATEWAY_WORKERS edges beside it on the same ports; with 1, one process plays both roles.
// GATEWAY_ROLE=controller or edge runs one role alone, as the stack's services do: controllers lead
// or stand by, edges find the leader in the member list.
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFunctions, type FunctionSpec } from '@platform/function-contract/manifest';
import { functionDatabaseSecrets, migrate, redact, startEmbeddedPostgres, waitForPostgres } from '@voting/database';
import { createEventBus, createQueue } from '@platform/queue';
import { loadConfig } from './config.js';
import {
  applyServerTimeouts,
  Controller,
  controllerApi,
  cpuMeter,
  EdgeScaler,
  watchGoneMembers,
  Leadership,
  MemberRegistry,
  queueConsumer,
  serveControllerApi,
  serveControllerProcess,
  createGateway,
  createRuntime,
  functionStore,
  localSecret,
  migratePlatform,
  RemoteCapacity,
  secretResolver,
  site,
  type Capacity,
  type Runtime,
} from '@platform/core';
import { checkFunctionSecrets, declaredSecrets, functionSecretResolver, sharedSecret } from '@platform/core/secrets';
import { checkAdminToken } from '@platform/core/auth';
import { CONTROLLER_TOKEN_SECRET } from '@platform/core/tokens';
import { secretEnvName } from '@platform/core/runtimes/function-env';
import { acceptSticky, reportSessions } from '@platform/core/edge/sticky';
import { superviseEdges, type EdgeSupervisor } from '@platform/core/edge/supervisor';
import { swarmService } from '@platform/core/runtimes/swarm/edge-service';
import { voterOfCookie, votingComposition } from './voting.js';
import { publicVoteUrl, startBanner } from './banner.js';
import { createLog, dockerFailure, friendlyFailure, functionLogFormat, isPretty } from './terminal.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const config = loadConfig();
const functionsDir = config.FUNCTIONS_DIR ? resolve(config.FUNCTIONS_DIR) : join(root, 'functions');
/** A deployed function's calls must end before the queue would deliver them again. */
const maxTimeoutSeconds = config.QUEUE_VISIBILITY_SECONDS - 1;
/** Secrets functions may be given: FUNCTION_SECRETS, else those the app's manifests declare. */
const allowedSecrets = (functions: FunctionSpec[]) => config.FUNCTION_SECRETS ?? declaredSecrets(functions);
/** What the controller needs for deploys: where they are kept, which images and secrets they may name. */
const deploys = (databaseUrl: string, functions: FunctionSpec[]) => ({
  store: functionStore(databaseUrl),
  images: config.FUNCTION_IMAGES,
  secrets: allowedSecrets(functions),
  functionsDir,
  maxTimeoutSeconds,
});
/** The vote URL the pages show a room as a QR code. */
const publicUrl = publicVoteUrl({ publicUrl: config.PUBLIC_URL, host: config.HOST, port: config.PORT });
/**
 * This process's part: both roles in one (`all`), the controller with edge workers beside it
 * (`primary`), an edge worker it started (`worker`), or one role alone (`controller`, `edge`).
 */
type Role = 'all' | 'primary' | 'worker' | 'controller' | 'edge';
const role: Role = cluster.isWorker ? 'worker' : config.GATEWAY_ROLE !== 'all' ? config.GATEWAY_ROLE : config.GATEWAY_WORKERS > 1 ? 'primary' : 'all';
const log = createLog({
  name: role === 'worker' || role === 'edge' ? 'edge' : role === 'controller' ? 'controller' : 'gateway',
  level: config.LOG_LEVEL,
  format: config.LOG_FORMAT,
});
/** What main() started, for shutdown() to stop in the right order. */
const started: {
  embedded?: { stop(): Promise<void> };
  queue?: { close(): Promise<void> };
  events?: { close(): Promise<void> };
  runtime?: Runtime;
  controller?: { close(): Promise<void> };
  controllerApi?: { close(): void };
  controllerServer?: { close(): void };
  edgeScaler?: EdgeScaler;
  goneEdges?: { stop(): Promise<void> };
  capacity?: { close(): Promise<void> };
  edges?: EdgeSupervisor;
  members?: MemberRegistry;
  leadership?: Leadership;
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

/** QUEUE_URL or EVENTS_URL, a Redis one with the password of REDIS_PASSWORD_FILE. */
const withRedisPassword = (url: string | undefined) => (url && /^rediss?:/.test(url) ? withPassword(url, config.REDIS_PASSWORD_FILE) : url);

async function listen(server: Server, port: number): Promise<void> {
  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, config.HOST, () => resolvePromise());
  });
}

/** The database (embedded unless configured), brought up to date; an edge is given its URL. */
async function database(dataDir: string): Promise<string> {
  let databaseUrl = config.DATABASE_URL && withPassword(config.DATABASE_URL, config.DATABASE_PASSWORD_FILE);
  if (role === 'worker') return databaseUrl!;
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
  return databaseUrl;
}

/** The secrets functions and the gateway use: Docker secrets or env, else made once and shared. */
async function secrets(dataDir: string, databaseUrl: string, eventsUrl: string) {
  const secretsDir = config.SECRETS_DIR;
  // Functions reach the database as roles of their own (infra/migrations), never as its owner;
  // the processes that hold a runtime set the roles' passwords.
  const runsFunctions = role === 'all' || role === 'primary' || role === 'controller';
  const fixed: Record<string, string> = runsFunctions ? await functionDatabaseSecrets(databaseUrl, eventsUrl) : {};
  const configured = secretResolver(secretsDir, fixed);
  // Unless configured, the cookie key and the invoke token (with which functions invoke private
  // functions) are made once into the database and read by every gateway on it.
  if (configured('cookie-secret') === undefined) {
    fixed['cookie-secret'] = await sharedSecret(databaseUrl, 'cookie-secret', { fromFile: join(dataDir, 'secrets', 'cookie-secret') });
  }
  if (configured('gateway-invoke-token') === undefined) fixed['gateway-invoke-token'] = await sharedSecret(databaseUrl, 'gateway-invoke-token');
  const invokeToken = configured('gateway-invoke-token')!;
  // The controller API's credential, for controllers and edges alone: made the same way.
  const controllerToken = configured(CONTROLLER_TOKEN_SECRET) ?? (await sharedSecret(databaseUrl, CONTROLLER_TOKEN_SECRET));
  // Functions hold the invoke token: the same value would open the controller API to them.
  if (controllerToken === invokeToken) throw new Error(`the secret ${CONTROLLER_TOKEN_SECRET} must differ from gateway-invoke-token, which functions hold`);
  fixed[CONTROLLER_TOKEN_SECRET] = controllerToken;
  // Credentials of /system mutations: the secret `gateway-admin-token` (or $GATEWAY_ADMIN_TOKEN), else one made here.
  let adminToken = configured('gateway-admin-token');
  let adminTokenFile: string | undefined;
  // Processes of a tier on other hosts share one made into the database; `npm start` keeps a file for `fn`.
  if (adminToken === undefined && (role === 'controller' || role === 'edge')) adminToken = await sharedSecret(databaseUrl, 'gateway-admin-token');
  if (adminToken === undefined) {
    adminToken = await localSecret(dataDir, 'gateway-admin-token');
    adminTokenFile = join(dataDir, 'secrets', 'gateway-admin-token');
  }
  fixed['gateway-admin-token'] = adminToken;
  return { resolve: secretResolver(secretsDir, fixed), fixed, invokeToken, controllerToken, adminToken, adminTokenFile };
}

/** The controller's part: the runtime, the only holder of the Docker socket. */
async function startRuntime(secret: (name: string) => string | undefined): Promise<Runtime> {
  const runtime = await createRuntime(config.RUNTIME, {
    env: { OPTION_A: config.OPTION_A, OPTION_B: config.OPTION_B, GATEWAY_URL: config.FUNCTION_GATEWAY_URL ?? `http://127.0.0.1:${config.PORT}` },
    secret,
    dockerNetwork: config.DOCKER_NETWORK,
    swarm: { prefix: config.SWARM_PREFIX, callbackPort: config.SWARM_CALLBACK_PORT },
    log: (message) => log.info(message),
    formatLogLine: functionLogFormat(config.LOG_FORMAT),
  }).catch((error: unknown) => {
    throw dockerFailure(error);
  });
  started.runtime = runtime;
  return runtime;
}

// Lost connections are worth a warning, except while stopping (Ctrl-C stops the database too).
const onError = (error: Error) => (stopping ? log.debug(error.message) : log.warn(error.message));

/** The async queue, as the settings say. */
function openQueue(databaseUrl: string) {
  return createQueue(withRedisPassword(config.QUEUE_URL) ?? databaseUrl, {
    onError,
    maxAttempts: config.QUEUE_MAX_ATTEMPTS,
    retryBackoffMs: config.QUEUE_RETRY_BACKOFF_MS,
    visibilityTimeoutMs: config.QUEUE_VISIBILITY_SECONDS * 1_000,
  });
}

/** The edge's part: the gateway (routes, limits, async worker, live channels) and the two pages' servers. */
async function startEdge(
  functions: FunctionSpec[],
  instances: Runtime | { capacity: Capacity },
  { databaseUrl, eventsUrl, invokeToken, adminToken }: { databaseUrl: string; eventsUrl: string; invokeToken: string; adminToken: string },
) {
  const queue = await openQueue(databaseUrl);
  const events = await createEventBus(eventsUrl, { onError });
  Object.assign(started, { queue, events });
  const gateway = await createGateway({
    functions,
    runtime: instances,
    controller: deploys(databaseUrl, functions),
    queue,
    events,
    log,
    bodyLimit: config.BODY_LIMIT,
    // Browser pages that may call functions and connect: the vote and result pages, PUBLIC_URL's, ALLOWED_ORIGINS.
    allowedOrigins: config.ALLOWED_ORIGINS,
    pagePorts: [config.PORT, config.RESULT_PORT],
    maxLiveClients: config.MAX_LIVE_CLIENTS,
    maxLiveClientsPerAddress: config.MAX_LIVE_CLIENTS_PER_ADDRESS,
    ...votingComposition,
    auth: { token: adminToken, user: config.GATEWAY_ADMIN_USER, readPublic: config.SYSTEM_READ_PUBLIC },
    callResultSeconds: config.CALL_RESULT_SECONDS,
    databaseUrl,
    invokeToken,
    trustProxy: config.TRUST_PROXY,
    callbackAllowedHosts: config.CALLBACK_ALLOWED_HOSTS,
    members: started.members,
    publicUrl,
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
  started.gateway = gateway;
  await started.members?.join({
    role: 'edge',
    cpu: cpuMeter(),
    inFlight: () => [...gateway.pools.values()].reduce((sum, pool) => sum + pool.status().inFlight, 0),
  });

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
        gateway,
      ),
    ),
    createServer({ maxHeaderSize: config.MAX_HEADER_BYTES }, site([['/', resultPages]], gateway)),
  ];
  for (const server of servers) applyServerTimeouts(server, gateway.timeouts);
  started.servers = servers;
  if (role === 'worker') {
    // The primary listens and hands connections over, each socket.io session to the edge holding it.
    acceptSticky({ vote: servers[0]!, result: servers[1]! });
    for (const server of servers) reportSessions(gateway.attachSockets(server));
  } else {
    await listen(servers[0]!, config.PORT);
    await listen(servers[1]!, config.RESULT_PORT);
    for (const server of servers) gateway.attachSockets(server);
  }
  await gateway.start();
}

async function main(): Promise<void> {
  // Manifests first: a bad one stops the start before anything is started.
  const functions = await loadFunctions(functionsDir, root);
  // The gateway's own tokens are never a function's, even if a manifest asks for one.
  try {
    checkFunctionSecrets(allowedSecrets(functions));
  } catch (error) {
    throw new Error(`${config.FUNCTION_SECRETS ? 'FUNCTION_SECRETS' : "the functions' manifests"}: ${(error as Error).message}`);
  }
  // A call running longer than the visibility timeout would be delivered twice while it runs.
  const longest = Math.max(...functions.map((f) => f.timeoutSeconds));
  if (config.QUEUE_VISIBILITY_SECONDS <= longest) {
    throw new Error(`QUEUE_VISIBILITY_SECONDS (${config.QUEUE_VISIBILITY_SECONDS}) must be longer than the longest function timeout (${longest} s)`);
  }
  // An admin token too short to stand against guessing stops the start too (one made here is long).
  const configuredAdminToken = secretResolver(config.SECRETS_DIR, {})('gateway-admin-token');
  if (configuredAdminToken !== undefined) checkAdminToken(configuredAdminToken);
  const dataDir = resolve(root, config.DATA_DIR);
  const databaseUrl = await database(dataDir);
  const eventsUrl = withRedisPassword(config.EVENTS_URL) ?? databaseUrl;
  const keys = await secrets(dataDir, databaseUrl, eventsUrl);
  const tokens = { databaseUrl, eventsUrl, invokeToken: keys.invokeToken, adminToken: keys.adminToken };
  // Every process of the tier is listed (GET /system/gateways); controllers elect a leader.
  started.members = new MemberRegistry({ database: databaseUrl, log: (message) => log.warn(message) });
  if (role === 'controller') return runController(functions, keys, databaseUrl);
  if (role !== 'worker' && role !== 'edge') {
    const leadership = new Leadership({ databaseUrl, name: 'controller', log: (message) => log.info(message) });
    leadership.start();
    started.leadership = leadership;
    await started.members.join({ role: 'controller', inFlight: () => 0, leader: () => leadership.isLeader() });
  }

  if (role === 'worker' || role === 'edge') {
    const members = started.members;
    const capacity = await RemoteCapacity.connect({
      // A worker's controller is its primary; an edge of its own follows whichever controller leads.
      locate: role === 'worker' ? async () => process.env.CONTROLLER_URL! : () => members.leaderUrl(),
      token: keys.controllerToken,
      edgeId: `edge-${hostname()}-${process.pid}`,
      kind: config.RUNTIME,
      log,
    });
    started.capacity = capacity;
    await startEdge(functions, { capacity }, tokens);
    if (role === 'edge') {
      log.info(`edge serving the vote side on ${config.HOST}:${config.PORT} and the result side on ${config.HOST}:${config.RESULT_PORT}`);
      return;
    }
    // Without its primary (the controller) an edge has no one to restart it or to hand it connections.
    process.on('disconnect', () => void shutdown('controller gone', 1));
    process.send?.({ type: 'platform:ready' });
    return;
  }
  const runtime = await startRuntime(functionSecretResolver(keys.resolve, allowedSecrets(functions)));
  if (role === 'all') {
    await startEdge(functions, runtime, tokens);
  } else {
    const controller = await Controller.start(runtime, functions, { ...deploys(databaseUrl, functions), log: (message) => log.warn(message) });
    started.controller = controller;
    const api = await serveControllerApi(controller, { token: keys.controllerToken, log, host: '127.0.0.1', port: 0 });
    started.controllerApi = api;
    // The edges get what they cannot make themselves: the database's URL and the shared secrets.
    const env: Record<string, string> = { DATABASE_URL: databaseUrl, CONTROLLER_URL: api.url };
    for (const [name, value] of Object.entries(keys.fixed)) env[secretEnvName(name)] = value;
    // A dead edge's calls taken from the queue go to the other edges at once, not after the visibility timeout.
    const queue = await openQueue(databaseUrl);
    started.queue = queue;
    const release = (pid: number) =>
      queue
        .release(queueConsumer(pid))
        .then((n) => n > 0 && log.warn(`edge ${pid} died holding ${n} queued calls: released to the other edges`))
        .catch((error: Error) => log.warn(`could not release the calls of edge ${pid}: ${error.message}`));
    started.edges = superviseEdges({
      onExit: (pid) => {
        if (!stopping) void release(pid);
      },
      count: config.GATEWAY_WORKERS,
      ports: [
        { name: 'vote', port: config.PORT, host: config.HOST },
        { name: 'result', port: config.RESULT_PORT, host: config.HOST },
      ],
      env,
      log,
    });
    await started.edges.ready;
  }
  process.stdout.write(
    startBanner({
      host: config.HOST,
      port: config.PORT,
      resultPort: config.RESULT_PORT,
      runtime: runtime.kind,
      functions: functions.map((f) => f.name),
      adminTokenFile: keys.adminTokenFile,
      edges: role === 'primary' ? config.GATEWAY_WORKERS : 1,
      publicUrl,
    }),
  );
}

/**
 * A controller of its own (GATEWAY_ROLE=controller): it stands by until it wins the lead, then
 * starts the runtime and serves edges. One that loses the lead exits at once, before another can
 * start acting; its supervisor (Swarm's restart policy) brings it back as a standby.
 */
async function runController(functions: FunctionSpec[], keys: Awaited<ReturnType<typeof secrets>>, databaseUrl: string): Promise<void> {
  // Listening on every interface, it is reached at the address the database sees it at, not by a
  // name: a container's name leaves DNS with it, and a lookup of a gone name ties up a resolver
  // thread for seconds in every edge that still tries it.
  const wildcard = config.HOST === '0.0.0.0' || config.HOST === '::';
  const address = wildcard ? ((await started.members!.ownAddress().catch(() => null)) ?? hostname()) : config.HOST;
  const url = config.CONTROLLER_ADVERTISE_URL ?? `http://${address.includes(':') ? `[${address}]` : address}:${config.PORT}`;
  const server = await serveControllerProcess({ host: config.HOST, port: config.PORT });
  started.controllerServer = server;
  let acting = false;
  let serving = false;
  const lead = async () => {
    acting = true;
    log.info('leading: starting the runtime');
    const runtime = await startRuntime(functionSecretResolver(keys.resolve, allowedSecrets(functions)));
    const controller = await Controller.start(runtime, functions, { ...deploys(databaseUrl, functions), log: (message) => log.warn(message) });
    started.controller = controller;
    // What it decides, in its log: the one place to read why instances came and went.
    controller.on('instanceStarted', (e) => log.info(`${e.function}: started ${e.instance} (${e.reason}, ${e.coldStartMs} ms)`));
    controller.on('instanceStopped', (e) => log.info(`${e.function}: stopped ${e.instance} (${e.reason})`));
    const api = controllerApi(controller, { token: keys.controllerToken, log });
    started.controllerApi = { close: () => api.stop() };
    server.lead(api.router);
    serving = true;
    await membership.refresh();
    log.info(`leading: serving edges at ${url}`);
    // An edge that died held calls taken from the queue: released, another edge takes them now.
    const queue = await openQueue(databaseUrl);
    started.queue = queue;
    started.goneEdges = watchGoneMembers({
      list: () => started.members!.list(),
      role: 'edge',
      onGone: async (edge) => {
        const released = await queue.release(queueConsumer(edge.pid, edge.host));
        if (released > 0) log.warn(`edge ${edge.id} is gone holding ${released} queued calls: released to the other edges`);
      },
      log: (message) => log.warn(message),
    });
    if (config.EDGE_SERVICE) {
      const scaler = new EdgeScaler({
        service: swarmService(config.EDGE_SERVICE, { log: (message) => log.warn(message) }),
        members: () => started.members!.list(),
        min: config.EDGE_REPLICAS_MIN,
        max: config.EDGE_REPLICAS_MAX || Number.POSITIVE_INFINITY,
        targetCpu: config.EDGE_TARGET_CPU,
        scaleDownAfterMs: config.EDGE_SCALE_DOWN_SECONDS * 1_000,
        onScaled: (event) => controller.emit('edgesScaled', event),
        log: (message) => log.info(message),
      });
      scaler.start();
      started.edgeScaler = scaler;
    }
  };
  const leadership = new Leadership({
    databaseUrl,
    name: 'controller',
    log: (message) => log.info(message),
    onChange: (leader) => {
      if (leader && !acting && !stopping) {
        lead().catch((error: unknown) => {
          log.fatal(`could not start leading: ${(error as Error).message}`);
          void shutdown('start-up failure', 1);
        });
      } else if (!leader && acting && !stopping) {
        log.error('lost the lead: stopping at once, so that only the new leader acts');
        process.exit(1);
      }
    },
  });
  started.leadership = leadership;
  // Listed as leader once it serves edges: they look for the leader here.
  const membership = await started.members!.join({ role: 'controller', url, inFlight: () => 0, leader: () => serving && leadership.isLeader() });
  leadership.start();
  log.info(`controller at ${url}: standing by until it leads`);
}

let stopping = false;
/** `last`: a line for the person who started the app, written after everything has stopped. */
async function shutdown(signal: string, code = 0, last?: string): Promise<void> {
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
  await step('stopping the edges', () => started.edges?.stop(signal === 'SIGINT' ? 'SIGINT' : 'SIGTERM'));
  await step('stopping the edge scaler', () => started.edgeScaler?.stop());
  await step('watching for gone edges', () => started.goneEdges?.stop());
  started.controllerApi?.close();
  started.controllerServer?.close();
  await step('closing the controller link', () => started.capacity?.close());
  await step('stopping function instances', () => started.controller?.close());
  await step('stopping the runtime', () => started.runtime?.close());
  await step('leaving the member list', () => started.members?.close());
  await step('giving up the lead', () => started.leadership?.stop());
  await step('closing the queue', () => started.queue?.close());
  await step('closing the event bus', () => started.events?.close());
  await step('stopping PostgreSQL', () => started.embedded?.stop());
  clearTimeout(force);
  if (last) process.stderr.write(`✖ ${last}\n`);
  process.exit(code);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

main().catch(async (error: unknown) => {
  // One a person can fix (a port in use) is said in one line, last, whatever the log format.
  const friendly = friendlyFailure(error, config);
  if (friendly) {
    // A log collector gets it as a record too.
    if (!isPretty(config.LOG_FORMAT)) log.fatal(friendly);
    return shutdown('start-up failure', 1, friendly);
  }
  log.fatal((error as Error).message);
  await shutdown('start-up failure', 1);
});
