import { hostname } from 'node:os';
import type { Server as HttpServer, IncomingMessage, RequestListener } from 'node:http';
import express, { type Express } from 'express';
import { ipKeyGenerator } from 'express-rate-limit';
import { Server as SocketServer } from 'socket.io';
import type { Logger } from 'pino';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import type { Consumer, EventBus, Queue } from '@platform/queue';
import type { Runtime } from './runtimes/runtime.js';
import type { Capacity } from './capacity.js';
import { Controller, type ControllerOptions } from './controller/controller.js';
import { FunctionPools } from './pools.js';
import { clientAddressOf, shuttingDown } from './http-function.js';
import { originRule } from './origin.js';
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
  /**
   * Browser origins besides the app's own pages (see pagePorts) and publicUrl's that may call
   * functions and open socket.io connections, e.g. `https://vote.example.com`.
   */
  allowedOrigins?: string[];
  /** The ports of the app's page servers: a page on any of them, on the host a request names, is the app's own. */
  pagePorts?: number[];
  /** Live socket.io clients (result pages, dashboards) at most, per server; beyond it new ones are refused (default 10,000). */
  maxLiveClients?: number;
  /**
   * Live socket.io clients from one client address (an IPv6 /56) at most, per server, polling
   * sessions included; default 1% of maxLiveClients but at least 100 (a room behind one NAT).
   */
  maxLiveClientsPerAddress?: number;
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
 * One address's share of the live clients unless configured: 1% of them, so that refusing
 * everyone takes a hundred addresses, but at least 100, so that a room or an office behind one
 * NAT can still open its result pages.
 */
export const defaultLiveClientsPerAddress = (maxLiveClients: number): number => Math.min(maxLiveClients, Math.max(100, Math.floor(maxLiveClients / 100)));

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
  // Which browser pages may make calls and open live connections: the app's own, and those allowed.
  const foreignOrigin = originRule({
    allowed: [...(options.publicUrl ? [options.publicUrl] : []), ...(options.allowedOrigins ?? [])],
    pagePorts: options.pagePorts,
  });
  const clientAddress = clientAddressOf(trustProxy);
  const maxLiveClients = options.maxLiveClients ?? 10_000;
  const maxLiveClientsPerAddress = options.maxLiveClientsPerAddress ?? defaultLiveClientsPerAddress(maxLiveClients);
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
    foreignOrigin,
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
      // The sessions each address holds, polling ones included, until each ends.
      const liveByAddress = new Map<string, number>();
      const addressKey = (req: IncomingMessage) => ipKeyGenerator(clientAddress(req));
      // A flood is refused by the thousand: one warning per 10 s tells of it.
      let warnedAt = Number.NEGATIVE_INFINITY;
      const warnRefused = (message: string, context: object) => {
        if (Date.now() - warnedAt < 10_000) return;
        warnedAt = Date.now();
        log.warn(context, message);
      };
      const io = new SocketServer(server, {
        serveClient: false,
        // The original result page's older socket.io client can connect unchanged.
        allowEIO3: true,
        cors: options.allowedOrigins?.length ? { origin: options.allowedOrigins } : undefined,
        // Called for each new session (handshake) only, before engine.io counts it.
        allowRequest: (req, callback) => {
          // Only the app's own pages or allowed origins may connect; refused ones count toward nothing.
          const origin = foreignOrigin(req.headers);
          if (origin !== undefined) return callback(`origin not allowed: ${origin.slice(0, 200)}`, false);
          // Each live client holds buffers: their number is bounded like every other line.
          if (io.engine.clientsCount >= maxLiveClients) {
            warnRefused('live clients at their limit: connections refused', { clients: io.engine.clientsCount });
            return callback('too many live clients', false);
          }
          // And one address may hold only its share, so that it cannot take every place.
          if ((liveByAddress.get(addressKey(req)) ?? 0) >= maxLiveClientsPerAddress) {
            warnRefused('live clients of one address at their limit: connections refused', { address: clientAddress(req) });
            return callback(`too many live clients from this address: at most ${maxLiveClientsPerAddress}`, false);
          }
          callback(null, true);
        },
      });
      io.engine.on('connection', (session: { request: IncomingMessage; once(event: 'close', listener: () => void): void }) => {
        const key = addressKey(session.request);
        liveByAddress.set(key, (liveByAddress.get(key) ?? 0) + 1);
        session.once('close', () => {
          const left = (liveByAddress.get(key) ?? 1) - 1;
          if (left > 0) liveByAddress.set(key, left);
          else liveByAddress.delete(key);
        });
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
      platform.attach(io, clientAddress);
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
