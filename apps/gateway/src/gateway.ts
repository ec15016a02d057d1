import { hostname } from 'node:os';
import type { Server as HttpServer } from 'node:http';
import express, { type Express } from 'express';
import { Server as SocketServer } from 'socket.io';
import type { Logger } from 'pino';
import type { FunctionSpec } from '@voting/function-contract/manifest';
import type { Consumer, EventBus, Queue } from '@voting/queue';
import type { Runtime } from './runtimes/runtime.js';
import { FunctionPool } from './pool.js';
import { errorHandler, functionRoutes, invokeHandler, lookup } from './routes/functions.js';
import { systemRoutes } from './routes/system.js';
import { startAsyncWorker } from './async-worker.js';
import { startChannel, type Channel } from './fanout.js';
import type { AdminAuth } from './auth.js';
import { CallStore } from './calls.js';
import { createMetrics } from './metrics.js';
import { Platform } from './platform.js';
import { serverTimeouts, type ServerTimeouts } from './timeouts.js';

export interface GatewayOptions {
  functions: FunctionSpec[];
  runtime: Runtime;
  queue: Queue;
  events: EventBus;
  channels?: Channel[];
  log: Logger;
  /** Largest request body accepted, e.g. '16kb'. */
  bodyLimit?: string;
  /** Origins allowed to open a socket.io connection besides the page's own host. */
  socketOrigins?: string[];
  /** Extra routes that stand for a function, e.g. the original app's form post `POST /` for `vote`. */
  aliases?: Array<{ method: 'get' | 'post'; path: string; function: string }>;
  /** Credentials of the /system mutations, and whether reading status is public. */
  auth?: AdminAuth;
  /** How long the status and result of an async call are kept (default 3600 s). */
  callResultSeconds?: number;
}

export interface Gateway {
  app: Express;
  pools: Map<string, FunctionPool>;
  calls: CallStore;
  platform: Platform;
  /** The HTTP server timeouts the manifests call for: apply them to every server of the gateway. */
  timeouts: ServerTimeouts;
  /** Adds the socket.io endpoint to a listening HTTP server; call once per server. */
  attachSockets(server: HttpServer): void;
  /** Starts the async worker and the live channels. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The gateway: routing, invocation and fan-out, nothing else. Which functions exist, how
 * they run and which events reach browsers are all options; it knows nothing about votes.
 */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const { runtime, queue, events, log } = options;
  const pools = new Map<string, FunctionPool>();
  for (const spec of options.functions) {
    await runtime.deploy(spec);
    pools.set(spec.name, new FunctionPool(spec, runtime));
  }

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const rawBody = express.raw({ type: () => true, limit: options.bodyLimit ?? '16kb' });
  app.use(['/function', '/async-function'], rawBody);
  const auth = options.auth ?? {};
  const calls = new CallStore(options.callResultSeconds ?? 3_600);
  calls.watch(pools.values());
  const metrics = createMetrics(pools, queue);
  const platform = new Platform(pools, queue, auth);
  app.use(functionRoutes(pools, queue, calls));
  app.use(systemRoutes({ pools, runtime, auth, calls, metrics }));
  for (const alias of options.aliases ?? []) {
    lookup(pools, alias.function);
    app[alias.method](alias.path, rawBody, invokeHandler(pools, alias.function));
  }
  app.use(errorHandler(log));

  const sockets: SocketServer[] = [];
  const stops: Array<() => Promise<void>> = [];
  let worker: Consumer | undefined;

  return {
    app,
    pools,
    calls,
    platform,
    timeouts: serverTimeouts(options.functions),
    attachSockets(server) {
      const io = new SocketServer(server, {
        serveClient: false,
        // The original result page's older socket.io client can connect unchanged.
        allowEIO3: true,
        cors: options.socketOrigins ? { origin: options.socketOrigins } : undefined,
        allowRequest: (req, callback) => {
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
      platform.attach(io);
      sockets.push(io);
    },
    async start() {
      platform.start();
      // The worker sees the queue through the call store, which records each call's progress.
      worker = startAsyncWorker({ queue: calls.recordingQueue(queue), pools, log, consumer: `${hostname()}-${process.pid}` });
      for (const channel of options.channels ?? []) {
        stops.push(await startChannel(channel, { events, pools, sockets, log }));
      }
    },
    async close() {
      platform.stop();
      for (const io of sockets) io.disconnectSockets(true);
      await worker?.stop();
      await Promise.all(stops.map((stop) => stop()));
      await Promise.all([...pools.values()].map((pool) => pool.close()));
    },
  };
}

