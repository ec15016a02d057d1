import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import express, { Router, type Request } from 'express';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import { parseDeployRequest } from '../deploy-request.js';
import type { AnnouncedEvents, Announcement, InstanceInfo } from '../capacity.js';
import { InvocationError } from '../errors.js';
import { errorHandler } from '../routes/functions.js';
import { bearerToken, sameToken } from '../tokens.js';
import type { Controller } from './controller.js';

/** Set on the 503s of a controller that stands by: the edge should look for the leader. */
export const STANDBY_HEADER = 'x-controller-standby';

/** An edge not heard from for this long no longer counts among those sharing the instances. */
export const EDGE_GONE_MS = 5_000;
/** How long a state request waits for a change before answering: well within EDGE_GONE_MS, so a quiet edge still counts. */
const LONG_POLL_MS = 2_500;
const EVENTS_KEPT = 500;

type Announced = Announcement & { version: number };

/** What `GET /controller/state` answers: the instances of every function, and what happened since. */
export interface ControllerState {
  /** This controller's start: versions count from 0 again in another one. */
  epoch: string;
  version: number;
  edges: number;
  functions: Record<
    string,
    // Each instance with its credential: edges in other processes call instances themselves.
    { spec: FunctionSpec; instances: InstanceInfo[]; counts: { replicas: number; availableReplicas: number; coldStarts: number } }
  >;
  events: Announced[];
}

/**
 * The controller's API for edges in other processes or on other hosts (OpenFaaS's provider API in
 * spirit): the state of instances as a long poll, and the few things edges ask of the controller.
 * Every route answers only holders of `token`, the controller token (secret `gateway-controller-token`),
 * which controllers and edges hold and functions never do: a function's invoke token opens nothing here.
 */
export function controllerApi(
  controller: Controller,
  { token, log }: { token: string; log: { error(obj: object, msg: string): void } },
): { router: Router; stop(): void } {
  const router = Router();
  const epoch = randomUUID();
  let version = 0;
  const events: Announced[] = [];
  const waiting = new Set<() => void>();
  const seen = new Map<string, number>();
  const changed = () => {
    version++;
    for (const wake of [...waiting]) wake();
  };
  const announce = <K extends keyof AnnouncedEvents>(kind: K) =>
    controller.on(kind, ((data: AnnouncedEvents[K][0]) => {
      events.push({ kind, version: version + 1, at: Date.now(), data } as Announced);
      if (events.length > EVENTS_KEPT) events.splice(0, events.length - EVENTS_KEPT);
      changed();
    }) as never);
  announce('instanceStarted');
  announce('instanceStopped');
  announce('scaled');
  announce('edgesScaled');
  announce('deployed');
  announce('removed');
  // Edges come and go: each one's share of an instance follows how many there are.
  const countEdges = () => {
    const now = Date.now();
    for (const [edge, at] of seen) {
      if (now - at <= EDGE_GONE_MS) continue;
      seen.delete(edge);
      controller.forgetEdge(edge);
    }
    const count = Math.max(1, seen.size);
    if (count !== controller.edges()) {
      controller.setEdges(count);
      changed();
    }
  };
  const timer = setInterval(countEdges, 1_000).unref();
  // Before every route, whatever its path: a route added later is closed too.
  router.use((req, _res, next) => {
    if (!sameToken(bearerToken(req.get('authorization')), token)) {
      return next(new InvocationError(401, 'the controller API needs the controller token (secret gateway-controller-token) as a bearer token'));
    }
    const edge = req.get('x-edge-id');
    if (edge) {
      const isNew = !seen.has(edge);
      seen.set(edge, Date.now());
      if (isNew) countEdges();
    }
    next();
  });
  const state = (after: number): ControllerState => ({
    epoch,
    version,
    edges: controller.edges(),
    functions: Object.fromEntries(
      controller.functions().map((f) => [f.name, { spec: f, instances: controller.instances(f.name), counts: controller.counts(f.name) }]),
    ),
    events: events.filter((e) => e.version > after),
  });
  router.get('/controller/state', async (req, res) => {
    // An edge that followed another controller (or none yet) gets the whole state at once.
    const after = req.query.epoch === epoch ? Number(req.query.after ?? -1) : -1;
    if (after >= version) {
      await new Promise<void>((resolve) => {
        const timeout = setTimeout(done, LONG_POLL_MS);
        function done() {
          clearTimeout(timeout);
          waiting.delete(done);
          resolve();
        }
        waiting.add(done);
        req.once('close', done);
      });
    }
    res.json(state(after));
  });
  const json = express.json({ limit: '1mb' });
  const fnOf = (req: Request) => String(req.params.fn);
  const abortOnClose = (req: Request) => {
    const controllerSide = new AbortController();
    req.socket.once('close', () => controllerSide.abort(new InvocationError(499, 'the edge went away')));
    return controllerSide.signal;
  };
  // Deploys answer with the state's version that has them: the edge answers its client once it has it too.
  router.post('/controller/functions', json, async (req, res) => {
    const { manifest, how } = req.body as { manifest: unknown; how: unknown };
    const spec = await controller.deploy(parseDeployRequest(manifest), how === 'update' ? 'update' : 'create');
    res.json({ spec, version });
  });
  router.delete('/controller/functions/:fn', async (req, res) => {
    await controller.remove(fnOf(req));
    res.json({ version });
  });
  router.post('/controller/functions/:fn/grow', async (req, res) => {
    res.json({ instance: await controller.grow(fnOf(req), abortOnClose(req)) });
  });
  router.post('/controller/functions/:fn/run-once', json, async (req, res) => {
    res.json(await controller.runOnce(fnOf(req), req.body, abortOnClose(req)));
  });
  router.post('/controller/functions/:fn/scale', json, async (req, res) => {
    res.json(await controller.scaleTo(fnOf(req), Number((req.body as { replicas?: unknown }).replicas)));
  });
  router.post('/controller/functions/:fn/retire', json, (req, res) => {
    const { instance, reason } = req.body as { instance: string; reason: 'unreachable' | 'timeout' };
    controller.retire(fnOf(req), instance, reason === 'timeout' ? 'timeout' : 'unreachable');
    res.status(204).end();
  });
  router.post('/controller/usage', json, (req, res) => {
    const edge = req.get('x-edge-id') ?? 'unknown';
    for (const { fn, instance, inFlight } of req.body as Array<{ fn: string; instance: string; inFlight: number }>) {
      controller.used(fn, instance, inFlight, edge);
    }
    res.status(204).end();
  });
  router.get('/controller/functions/:fn/logs', (req, res) => {
    res.json(controller.logs(fnOf(req), Number(req.query.tail ?? 100)));
  });
  router.use(errorHandler(log));
  return {
    router,
    // Stopping: long polls answer at once.
    stop() {
      clearInterval(timer);
      changed();
    },
  };
}

/** The controller API on its own server (e.g. loopback, port 0 for any free one); resolves with its URL. */
export async function serveControllerApi(
  controller: Controller,
  options: { token: string; log: { error(obj: object, msg: string): void }; host: string; port: number },
): Promise<{ url: string; close(): void }> {
  const api = controllerApi(controller, options);
  const server = createServer(express().disable('x-powered-by').use(api.router));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    close() {
      api.stop();
      server.close();
      server.closeAllConnections();
    },
  };
}
