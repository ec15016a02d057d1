import { Router } from 'express';
import type { FunctionPool } from '../pool.js';
import type { Runtime } from '../runtimes/runtime.js';

/** The OpenFaaS FunctionStatus shape, plus counters of our own. */
function functionStatus(pool: FunctionPool) {
  const { spec } = pool;
  const counts = pool.status();
  return {
    name: spec.name,
    image: spec.image ?? `local/${spec.name}`,
    namespace: 'default',
    envProcess: spec.main,
    labels: { 'voting.function': spec.name, 'voting.mode': spec.mode },
    annotations: spec.description ? { description: spec.description } : {},
    limits: { memory: `${spec.memoryMb}Mi` },
    replicas: counts.replicas,
    availableReplicas: counts.availableReplicas,
    invocationCount: counts.invocationCount,
    inFlight: counts.inFlight,
    queued: counts.queued,
    coldStarts: counts.coldStarts,
    instances: pool.instanceIds(),
    mode: spec.mode,
    timeoutSeconds: spec.timeoutSeconds,
    maxConcurrency: spec.maxConcurrency,
    maxInstances: spec.maxInstances,
    idleSeconds: spec.idleSeconds,
  };
}

export function systemRoutes(pools: Map<string, FunctionPool>, runtime: Runtime): Router {
  const router = Router();
  router.get('/system/functions', (_req, res) => {
    res.json([...pools.values()].map(functionStatus));
  });
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', runtime: runtime.kind, functions: pools.size });
  });
  return router;
}
