import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Queue } from '@platform/queue';
import type { FunctionPools } from './pools.js';
import type { ShedReason } from './rate-limit.js';

/** How long a scrape waits for the queue's depth before leaving the metric out. */
const QUEUE_DEPTH_TIMEOUT_MS = 500;

/**
 * The gateway's Prometheus metrics (names as OpenFaaS's gateway where they exist), in a
 * registry of its own so several gateways in one process do not share counters.
 */
export function createMetrics(pools: FunctionPools, queue: Queue): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const list = () => [...pools.values()];

  const invocations = new Counter({
    name: 'gateway_function_invocation_total',
    help: 'Function invocations by function and the HTTP status the caller got',
    labelNames: ['function_name', 'code'],
    registers: [registry],
  });
  const seconds = new Histogram({
    name: 'gateway_functions_seconds',
    help: 'Duration of function invocations in seconds, waiting for a slot and cold starts included',
    labelNames: ['function_name', 'code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  // The series of each function and status, looked up once: labels are hashed on every lookup.
  const series = new Map<string, { count: { inc(): void }; time: { observe(value: number): void } }>();
  pools.each((pool) =>
    pool.on('callFinished', ({ function: fn, status, durationMs }) => {
      const key = `${fn} ${status}`;
      let found = series.get(key);
      if (!found) {
        const labels = { function_name: fn, code: String(status) };
        found = { count: invocations.labels(labels), time: seconds.labels(labels) };
        series.set(key, found);
      }
      found.count.inc();
      found.time.observe(durationMs / 1_000);
    }),
  );

  new Counter({
    name: 'gateway_function_cold_starts_total',
    help: 'Instances started (warm instances, and one-shot processes: each one-shot call is a cold start)',
    labelNames: ['function_name'],
    registers: [registry],
    collect() {
      this.reset();
      for (const pool of list()) this.inc({ function_name: pool.spec.name }, pool.status().coldStarts);
    },
  });
  new Gauge({
    name: 'gateway_function_in_flight',
    help: 'Calls being run by a function now',
    labelNames: ['function_name'],
    registers: [registry],
    collect() {
      for (const pool of list()) this.set({ function_name: pool.spec.name }, pool.status().inFlight);
    },
  });
  new Gauge({
    name: 'gateway_function_waiting',
    help: 'Calls waiting for a free slot of a function (maxConcurrency reached)',
    labelNames: ['function_name'],
    registers: [registry],
    collect() {
      for (const pool of list()) this.set({ function_name: pool.spec.name }, pool.status().queued);
    },
  });
  new Gauge({
    name: 'gateway_service_count',
    help: 'Replicas (instances) of a function, starting ones included',
    labelNames: ['function_name'],
    registers: [registry],
    collect() {
      for (const pool of list()) this.set({ function_name: pool.spec.name }, pool.status().replicas);
    },
  });
  new Gauge({
    name: 'gateway_queue_depth',
    help: 'Async calls not yet acknowledged (waiting, running or waiting for a retry); absent when the queue did not answer in time',
    registers: [registry],
    async collect() {
      this.reset();
      const depth = await queueDepth(queue, QUEUE_DEPTH_TIMEOUT_MS);
      if (depth !== undefined) this.set(depth);
    },
  });
  return registry;
}

/**
 * Requests refused to protect the gateway (load shed): rate limits, a function's full line
 * (429 busy), the queue's full line of pending writes or the queue being unavailable (503).
 */
export function shedCounter(registry: Registry, pools: FunctionPools): (fn: string, reason: ShedReason) => void {
  const counter = new Counter({
    name: 'gateway_requests_shed_total',
    help: 'Requests refused to protect the gateway, by function and reason (rate limits, busy, queue full or unavailable)',
    labelNames: ['function_name', 'reason'],
    registers: [registry],
  });
  pools.each((pool) =>
    pool.on('callFinished', ({ function: fn, status }) => {
      if (status === 429) counter.inc({ function_name: fn, reason: 'busy' });
    }),
  );
  return (fn, reason) => counter.inc({ function_name: fn, reason });
}

/** The queue's depth, or undefined when it fails or takes longer than `timeoutMs`. */
export async function queueDepth(queue: Queue, timeoutMs: number): Promise<number | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([queue.depth(), new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)))]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
