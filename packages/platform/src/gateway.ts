import { hostname } from 'node:os';
import type { Server as HttpServer, RequestListener } from 'node:http';
import express, { type Express } from 'express';
import { Server as SocketServer } from 'socket.io';
import type { Logger } from 'pino';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import type { Consumer, EventBus, Queue } from '@platform/queue';
import type { Runtime } from './runtimes/runtime.js';
import type { Capacity } from './capacity.js';
import { Controller, type ControllerOptions } from './controller/controller.js';
import { FunctionPools } from './pools.js';
import { shuttingDown } from './http-function.js';
import { errorHandler, lookup } from './routes/functions.js';
import { callRoutes, type CallListener } from './routes/calls.js';
import { systemRoutes } from './routes/system.js';
import { gatewaysRoutes, type MemberList } from './routes/gateways.js';
import { startAsyncWorker } from './async-worker.js';
import { startChannel, type Channel } from './fanout.js';
import type { AdminAuth } from './auth.js';
import { CallStore } from './calls.js';
import { sharedState } from './store/index.js';
import { createMetrics, shedCounter } from './metrics.js';
import { type Limiter, rateLimiters, type RateLimit } from './rate-limit.js';
import { Platform } from './platform.js';
import { parseHostPattern } from './callback-url.js';
import { applyServerTimeouts, serverTimeouts, type ServerTimeouts } from './timeouts.js';

/** The queue consumer name of a gateway process: unique per process, and known to whoever supervises it (to release its calls once it died). */
export const queueConsumer = (pid: number = process.pid, host: string = hostname()): string => `${host}-${pid}`;

export interface GatewayOptions {
  /** The app's functions, for the controller in this process; an edge of a controller elsewhere serves the controller's list (deploys change it). */
  functions: FunctionSpec[];
  /**
   * Where instances come from: a runtime (this process is also the controller, and starts them)
   * or a controller elsewhere (this process is an edge only, and holds no runtime).
   */
  runtime: Runtime | { capacity: Capacity };
  /** For the controller in this process: where deploys are kept, which images they may name... */
  controller?: Omit<ControllerOptions, 'log'>;
  queue: Queue;
  events: EventBus;
  channels?: Channel[];
  log: Logger;
  /** Largest request body accepted, e.g. '16kb'. */
  bodyLimit?: string;
  /** Origins allowed to open a socket.io connection besides the page's own host. */
  socketOrigins?: string[];
  /** Live socket.io clients (result pages, dashboards) at most, per server; beyond it new ones are refused (default 10,000). */
  maxLiveClients?: number;
  /**
   * What the pages' socket.io clients expect besides the channels: an event sent on every
   * connection before any state (the original result page shows itself, and only then listens,
   * on its `message`), and an event by which a client joins a room (`{"channel": "<room>"}`).
   */
  socketProtocol?: { greeting?: { event: string; data: unknown }; joinEvent?: string };
  /** Extra routes that stand for a function, e.g. a form post to `POST /` for a function. */
  aliases?: Array<{ method: 'get' | 'post'; path: string; function: string }>;
  /** Credentials of the /system mutations, and whether reading status is public. */
  auth?: AdminAuth;
  /** How long the status and result of an async call are kept (default 3600 s). */
  callResultSeconds?: number;
  /**
   * PostgreSQL shared by the gateway's edges (its platform tables, see migratePlatform): async call
   * records and rate-limit counters kept there are the same whichever edge a request reaches.
   * Without it, this gateway keeps them in its own memory.
   */
  databaseUrl?: string;
  /**
   * The token functions send (header `X-Invoke-Token`) to call private functions; without it
   * private functions cannot be invoked through the gateway at all.
   */
  invokeToken?: string;
  /** Proxies whose X-Forwarded-For names the client (proxy-addr names or CIDRs); none by default. */
  trustProxy?: string[];
  /** Rate limits per function (e.g. a form's path): 429 with Retry-After beyond them. */
  rateLimits?: RateLimit[];
  /** Async calls being written to the queue at once at most; beyond it 503 (default 5000). */
  maxPendingEnqueues?: number;
  /** Hosts (host, host:port, *.domain) async callbacks may reach whatever their address; others only public addresses. */
  callbackAllowedHosts?: string[];
  /** The tier's members (a MemberRegistry), listed at GET /system/gateways; without it that route answers 501. */
  members?: MemberList;
  /** Where people reach the app, answered at GET /system/public-url with its QR code (pages show both). */
  publicUrl?: string;
}

export interface Gateway {
  /** The calls (`/function/…`, `/async-function/…`, aliases): takes a request that is one, else returns false. */
  handleCall: CallListener;
  /** Everything else: the platform's routes (`/system/…`, `/healthz`, `/metrics`), JSON 404s. */
  app: Express;
  /** A server's request listener: the calls, then the app. */
  listener: RequestListener;
  pools: FunctionPools;
  calls: CallStore;
  platform: Platform;
  /** The HTTP server timeouts the manifests call for: apply them to every server of the gateway (attachSockets keeps them so as deploys come and go). */
  timeouts: ServerTimeouts;
  /** Adds the socket.io endpoint to a listening HTTP server, whose timeouts it then keeps; call once per server. */
  attachSockets(server: HttpServer): SocketServer;
  /** Starts the async worker and the live channels. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Rooms one socket may join: each costs the server memory. */
const MAX_ROOMS_PER_SOCKET = 16;

/**
 * The gateway: routing, invocation and fan-out, nothing else. Which functions exist, how
 * they run and which events reach browsers are all options; it knows nothing about any one app.
 */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const { queue, events, log } = options;
  const owned =
    'capacity' in options.runtime ? undefined : await Controller.start(options.runtime, options.functions, { ...options.controller, log: (m) => log.warn(m) });
  const capacity = owned ?? (options.runtime as { capacity: Capacity }).capacity;
  // One pool per function the controller runs, as deploys come and go.
  const pools = new FunctionPools(capacity);
  // The servers' timeouts follow the manifests, deployed ones included (see serverTimeouts).
  const servers: HttpServer[] = [];
  const timeouts = () => serverTimeouts([...pools.values()].map((pool) => pool.spec));
  for (const change of ['deployed', 'removed', 'followed'] as const) {
    capacity.on(change, () => {
      pools.sync();
      for (const server of servers) applyServerTimeouts(server, timeouts());
    });
  }

  const app = express();
  app.disable('x-powered-by');
  let closing = false;
  let started = false;
  // Once stopping, new requests (on connections still open) are refused; calls in flight finish.
  app.use((_req, res, next) => next(closing ? shuttingDown(res) : undefined));
  app.set('query parser', 'simple');
  // Proxies whose X-Forwarded-For names the client: none unless configured (req.ip, and the calls' limits).
  const trustProxy = options.trustProxy ?? [];
  app.set('trust proxy', trustProxy);
  const auth = options.auth ?? {};
  const callResultSeconds = options.callResultSeconds ?? 3_600;
  const state = sharedState(options.databaseUrl, { callResultSeconds, onError: (error) => log.warn(error.message) });
  const calls = new CallStore(callResultSeconds, state.calls);
  pools.each((pool) => calls.watch([pool]));
  const metrics = createMetrics(pools, queue);
  // The dashboard and /system/functions show the whole tier: the edges share their figures on the event bus.
  const platform = new Platform(pools, queue, auth, capacity, { events, onError: (error) => log.warn(error.message) });
  const shed = shedCounter(metrics, pools);
  const limiters = new Map<string, Limiter[]>();
  for (const limit of options.rateLimits ?? []) {
    lookup(pools, limit.function);
    const store = { store: (prefix: string, ms: number) => state.rateLimitStore(prefix, ms), log };
    limiters.set(limit.function, [...(limiters.get(limit.function) ?? []), ...rateLimiters(limit, (reason) => shed(limit.function, reason), store)]);
  }
  // The calls: node:http alone, ahead of the Express app (which serves everything else).
  const callbackHosts = (options.callbackAllowedHosts ?? []).map(parseHostPattern);
  const callListener = callRoutes({
    pools,
    // Each accepted call is recorded as it is queued (see CallStore.acceptingQueue).
    queue: calls.acceptingQueue(queue),
    aliases: options.aliases ?? [],
    limiters,
    bodyLimit: options.bodyLimit ?? '16kb',
    trustProxy,
    invokeToken: options.invokeToken,
    maxPendingEnqueues: options.maxPendingEnqueues ?? 5_000,
    shed,
    callbackHosts,
    closing: () => closing,
    log,
  });
  app.use(
    systemRoutes({
      pools,
      runtime: capacity,
      auth,
      calls,
      metrics,
      figures: (pool) => platform.figures(pool),
      ready: () => started && !closing,
      publicUrl: options.publicUrl,
    }),
  );
  app.use(gatewaysRoutes({ members: options.members, auth }));
  // Any other route: a JSON 404 like every other error, never Express's HTML page.
  app.use((req, res) => {
    res.status(404).json({ error: `no route ${req.method} ${req.path.slice(0, 100)}` });
  });
  app.use(errorHandler(log));

  const sockets: SocketServer[] = [];
  const stops: Array<() => Promise<void>> = [];
  let worker: Consumer | undefined;

  return {
    handleCall: callListener,
    app,
    listener: (req, res) => {
      if (!callListener(req, res)) app(req, res);
    },
    pools,
    calls,
    platform,
    timeouts: timeouts(),
    attachSockets(server) {
      servers.push(server);
      const io = new SocketServer(server, {
        serveClient: false,
        // The original result page's older socket.io client can connect unchanged.
        allowEIO3: true,
        cors: options.socketOrigins ? { origin: options.socketOrigins } : undefined,
        allowRequest: (req, callback) => {
          // Each live client holds buffers: their number is bounded like every other line.
          if (io.engine.clientsCount >= (options.maxLiveClients ?? 10_000)) {
            log.warn({ clients: io.engine.clientsCount }, 'live clients at their limit: connection refused');
            return callback('too many live clients', false);
          }
          // Browsers send Origin; only the app's own pages (same host) or configured origins may connect.
          const origin = req.headers.origin;
          if (!origin) return callback(null, true);
          const allowed = options.socketOrigins ?? [];
          const sameHost = (() => {
            try {
              return new URL(origin).host === req.headers.host;
            } catch {
              return false;
            }
          })();
          callback(sameHost || allowed.includes(origin) ? null : 'origin not allowed', sameHost || allowed.includes(origin));
        },
      });
      // Registered before the channels' own connection handlers, so the greeting comes first.
      const { greeting, joinEvent } = options.socketProtocol ?? {};
      io.on('connection', (socket) => {
        if (greeting) socket.emit(greeting.event, greeting.data);
        if (joinEvent) {
          socket.on(joinEvent, (data: unknown) => {
            const room = (data as { channel?: unknown } | null)?.channel;
            if (typeof room === 'string' && room.length > 0 && room.length <= 100 && socket.rooms.size < MAX_ROOMS_PER_SOCKET) void socket.join(room);
          });
        }
      });
      platform.attach(io);
      sockets.push(io);
      return io;
    },
    async start() {
      await platform.start();
      // The worker sees the queue through the call store, which records each call's progress.
      worker = startAsyncWorker({ queue: calls.recordingQueue(queue), pools, log, consumer: queueConsumer(), callbackHosts });
      for (const channel of options.channels ?? []) {
        stops.push(await startChannel(channel, { events, pools, sockets, log }));
      }
      started = true;
    },
    async close() {
      closing = true;
      await platform.stop();
      for (const io of sockets) io.disconnectSockets(true);
      await worker?.stop();
      await Promise.all(stops.map((stop) => stop()));
      await Promise.all([...pools.values()].map((pool) => pool.close()));
      // Last: calls accepted while the others stopped are recorded too.
      await state.close();
      await owned?.close();
    },
  };
}
