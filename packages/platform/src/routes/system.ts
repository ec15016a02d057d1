import express, { Router } from 'express';
import QRCode from 'qrcode';
import type { Registry } from 'prom-client';
import type { FunctionPool } from '../pool.js';
import type { Capacity } from '../capacity.js';
import type { CallStore } from '../calls.js';
import { requireAdmin, requireReader, type AdminAuth } from '../auth.js';
import { InvocationError } from '../errors.js';
import { openapiDocument } from '../openapi.js';
import { lookup } from './functions.js';
import { parseDeployRequest } from '../deploy-request.js';
import { LABELS } from '../labels.js';
import type { TierFigures } from '../tier-stats.js';
import { buildInfo } from '../build-info.js';

/** The calls of a function on the whole tier, every edge's (Platform.figures). */
export type TierCounts = (pool: FunctionPool) => Pick<TierFigures, 'inFlight' | 'waiting' | 'invocationCount' | 'callsPerSecond' | 'latencyMs'>;

/** The OpenFaaS FunctionStatus shape, plus counters of our own. */
function functionStatus(pool: FunctionPool, figures: TierCounts) {
  const { spec } = pool;
  const counts = pool.status();
  const tier = figures(pool);
  return {
    name: spec.name,
    image: spec.image ?? `local/${spec.name}`,
    namespace: 'default',
    envProcess: spec.main,
    labels: { ...spec.labels, [LABELS.function]: spec.name, [`${LABELS.function}.mode`]: spec.mode },
    annotations: { ...spec.annotations, ...(spec.description ? { description: spec.description } : {}) },
    limits: { memory: `${spec.memoryMb}Mi` },
    replicas: counts.replicas,
    availableReplicas: counts.availableReplicas,
    invocationCount: tier.invocationCount,
    inFlight: tier.inFlight,
    queued: tier.waiting,
    coldStarts: counts.coldStarts,
    callsPerSecond: tier.callsPerSecond,
    latencyMs: tier.latencyMs,
    instances: pool.instanceIds(),
    mode: spec.mode,
    timeoutSeconds: spec.timeoutSeconds,
    maxConcurrency: spec.maxConcurrency,
    maxInstances: spec.maxInstances,
    idleSeconds: spec.idleSeconds,
  };
}

export interface SystemRouteOptions {
  pools: Map<string, FunctionPool>;
  runtime: Pick<Capacity, 'kind' | 'logs' | 'deploy' | 'remove'>;
  auth: AdminAuth;
  calls: CallStore;
  metrics: Registry;
  /** Calls in flight, waiting and invoked, of every edge of the tier. */
  figures: TierCounts;
  /** Ready once the gateway has started its workers and channels, and no longer once it stops. */
  ready: () => boolean;
  /** Where people reach the app (e.g. a room's phones), shown by pages as text and a QR code. */
  publicUrl?: string | undefined;
}

export function systemRoutes({ pools, runtime, auth, calls, metrics, figures, ready, publicUrl }: SystemRouteOptions): Router {
  const router = Router();
  const reader = requireReader(auth);
  const admin = requireAdmin(auth);

  router.get('/system/functions', reader, (_req, res) => {
    res.json([...pools.values()].map((pool) => functionStatus(pool, figures)));
  });
  // Deploys (OpenFaaS's routes): the controller checks and keeps them; every edge routes to them.
  const deployBody = [
    admin,
    (req: express.Request, _res: express.Response, next: express.NextFunction) =>
      next(req.is('application/json') ? undefined : new InvocationError(415, 'send JSON: a function manifest')),
    express.json({ limit: '64kb', strict: true }),
  ];
  for (const [method, how] of [
    ['post', 'create'],
    ['put', 'update'],
  ] as const) {
    router[method]('/system/functions', ...deployBody, async (req, res) => {
      const spec = await runtime.deploy(parseDeployRequest(req.body), how);
      const pool = pools.get(spec.name);
      res.status(202).json(pool ? functionStatus(pool, figures) : { name: spec.name });
    });
  }
  router.delete('/system/functions', ...deployBody, async (req, res) => {
    const name = (req.body as { functionName?: unknown } | null)?.functionName;
    if (typeof name !== 'string' || name === '') throw new InvocationError(400, 'field "functionName" is missing: send {"functionName": "<name>"}');
    await runtime.remove(name);
    res.status(202).json({ functionName: name });
  });
  router.get('/system/function/:name', reader, (req, res) => {
    res.json(functionStatus(lookup(pools, String(req.params.name)), figures));
  });
  router.post(
    '/system/scale-function/:name',
    admin,
    (req, _res, next) => {
      lookup(pools, String(req.params.name));
      next(req.is('application/json') ? undefined : new InvocationError(415, 'send JSON: {"serviceName": "<name>", "replicas": <n>}'));
    },
    express.json({ limit: '1kb', strict: true }),
    async (req, res) => {
      const pool = lookup(pools, String(req.params.name));
      const body = req.body as { serviceName?: unknown; replicas?: unknown } | undefined;
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvocationError(400, 'send a JSON object');
      if (body.serviceName !== undefined && body.serviceName !== pool.spec.name) {
        throw new InvocationError(400, `serviceName "${String(body.serviceName)}" does not match the path's function "${pool.spec.name}"`);
      }
      if (typeof body.replicas !== 'number') throw new InvocationError(400, 'replicas must be a number');
      const { replicas } = await pool.scaleTo(body.replicas);
      res.json({ serviceName: pool.spec.name, replicas });
    },
  );
  // OpenFaaS's log route: newline-delimited JSON, one {name, instance, timestamp, text} per line.
  // Always the admin's: functions log what they choose, users' data included.
  router.get('/system/logs', admin, async (req, res) => {
    const name = typeof req.query.name === 'string' ? req.query.name : '';
    if (!name) throw new InvocationError(400, 'name the function: /system/logs?name=<function>');
    const pool = lookup(pools, name);
    const tail = req.query.tail === undefined ? 100 : Number(req.query.tail);
    if (!Number.isInteger(tail) || tail < 1 || tail > 1_000) throw new InvocationError(400, 'tail must be an integer from 1 to 1000');
    if (!runtime.logs) throw new InvocationError(501, `the ${runtime.kind} runtime keeps no logs of its functions`);
    const lines = (await runtime.logs(pool.spec.name, tail)).map((line) => JSON.stringify({ name: pool.spec.name, namespace: 'default', ...line }));
    res.type('application/x-ndjson').send(lines.length ? `${lines.join('\n')}\n` : '');
  });
  // A status read although it holds a result: its random id, known only to whoever queued the call, is the key.
  // Any edge answers: the records are the ones every edge writes (shared when the gateway has a database).
  router.get('/system/calls/:callId', reader, async (req, res) => {
    const callId = String(req.params.callId);
    const call = await calls.read(callId).catch(() => {
      throw new InvocationError(503, 'the records of async calls cannot be read now', { 'retry-after': '1' });
    });
    if (!call) throw new InvocationError(404, `call "${callId}" is unknown, or kept no longer`);
    res.json(call);
  });
  // Public on purpose: it is what a page puts on a projector. The QR code is made once.
  let qr: Promise<string> | undefined;
  router.get('/system/public-url', async (_req, res) => {
    if (!publicUrl) throw new InvocationError(404, 'no public URL is configured');
    qr ??= QRCode.toString(publicUrl, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
    res.setHeader('cache-control', 'no-cache');
    res.json({ url: publicUrl, qr: await qr });
  });
  // OpenFaaS's info route (faas-cli version reads it): public like /healthz, it tells versions only.
  router.get('/system/info', (_req, res) => {
    const { release, sha } = buildInfo();
    res.json({
      provider: { provider: '@platform/core', orchestration: runtime.kind, version: { release, sha } },
      version: { release, sha },
      arch: process.arch,
    });
  });
  router.get('/system/openapi.json', (_req, res) => {
    res.json(openapiDocument);
  });
  router.get('/metrics', reader, async (_req, res) => {
    res.setHeader('content-type', metrics.contentType);
    res.end(await metrics.metrics());
  });
  // A readiness check: load balancers, healthchecks and `npm start`'s supervisor send traffic
  // only once everything behind the routes runs.
  router.get('/healthz', (_req, res) => {
    const status = ready() ? 'ok' : 'starting';
    res.status(status === 'ok' ? 200 : 503).json({ status, runtime: runtime.kind, functions: pools.size });
  });
  return router;
}
