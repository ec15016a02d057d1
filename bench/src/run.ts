import { cpus, loadavg, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { residentMb, startApp, type RunningApp } from './app.js';
import { callOverhead, coldStart, freshness, throughput } from './scenarios.js';
import { dockerScenarios } from './docker.js';
import { composeThroughput } from './compose.js';
import { edgeScaling } from './edges.js';
import { swarmScenarios } from './swarm.js';
import { liveViewers } from './viewers.js';
import { originalSeedLoad } from './original-seed.js';
import { deployTimes } from './deploys.js';
import type { BenchRun, ScenarioResult } from './types.js';

export const scenarioIds = ['overhead', 'cold-start', 'freshness', 'throughput', 'seed', 'edges', 'viewers', 'deploy', 'docker', 'compose', 'swarm'] as const;
export type ScenarioId = (typeof scenarioIds)[number];

export interface BenchOptions {
  only?: ScenarioId[];
  /** Votes for the throughput scenarios (each edge count gets them), and the load's concurrency. */
  votes?: number;
  concurrency?: number;
  /** Sequential calls per side for the overhead scenario. */
  calls?: number;
  coldStarts?: number;
  freshnessSamples?: number;
  /** socket.io viewers per run of the viewers scenario, and how long each run's votes arrive. */
  viewers?: number[];
  viewerSeconds?: number;
  /** Longest time the throughput load runs before it is stopped. */
  maxLoadSeconds?: number;
  /** Extra environment for the app (e.g. NODE_OPTIONS=--cpu-prof). */
  appEnv?: NodeJS.ProcessEnv;
  /** Options for the app's node (e.g. --cpu-prof). */
  appNodeArgs?: string[];
  log?: (line: string) => void;
}

export async function runBench(options: BenchOptions = {}): Promise<BenchRun> {
  const log = options.log ?? (() => {});
  const selected = new Set<ScenarioId>(options.only?.length ? options.only : scenarioIds);
  const settings = {
    scenarios: [...selected].join(' '),
    votes: options.votes ?? 20_000,
    concurrency: options.concurrency ?? 64,
    calls: options.calls ?? 2_000,
    coldStarts: options.coldStarts ?? 8,
    freshnessSamples: options.freshnessSamples ?? 200,
    maxLoadSeconds: options.maxLoadSeconds ?? 45,
  };
  const startedAt = new Date().toISOString();
  const machine = {
    cpus: cpus().length,
    model: cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadAverage: loadavg(),
    memoryMb: Math.round(totalmem() / 2 ** 20),
  };
  const began = performance.now();
  const scenarios: ScenarioResult[] = [];
  const step = async (id: ScenarioId, title: string, run: () => Promise<ScenarioResult | ScenarioResult[]>) => {
    if (!selected.has(id)) return;
    log(`${title}...`);
    const t = performance.now();
    try {
      const result = await run();
      for (const r of Array.isArray(result) ? result : [result]) scenarios.push({ ...r, durationMs: Math.round(performance.now() - t) });
    } catch (error) {
      scenarios.push({ id, title, status: 'failed', reason: (error as Error).message, metrics: [], durationMs: Math.round(performance.now() - t) });
    }
  };
  const embedded = (['overhead', 'cold-start', 'freshness', 'throughput'] as const).some((id) => selected.has(id));
  if (embedded) await embeddedScenarios();
  // Each after the app before it is gone, so no two apps compete for the two cores.
  await step('seed', "the original's seed load", () => originalSeedLoad({ appEnv: options.appEnv ?? {}, log }));
  await step('edges', 'vote throughput by edges', () =>
    edgeScaling({
      votes: settings.votes,
      concurrency: settings.concurrency,
      maxSeconds: settings.maxLoadSeconds,
      appEnv: options.appEnv ?? {},
      appNodeArgs: options.appNodeArgs ?? [],
      log,
    }),
  );
  await step('viewers', 'live viewers', () =>
    liveViewers({
      viewers: options.viewers ?? [500, 1_000, 2_000, 5_000],
      edges: [1, 2],
      rate: 200,
      seconds: options.viewerSeconds ?? 10,
      appEnv: options.appEnv ?? {},
      log,
    }),
  );
  await step('deploy', 'live deploys', () => deployTimes({ samples: Math.min(settings.coldStarts, 5), log }));
  await step('docker', 'docker runtime', () => dockerScenarios({ samples: settings.coldStarts, calls: settings.calls, log }));
  await step('compose', 'vote throughput, compose', () =>
    composeThroughput({ votes: settings.votes, concurrency: settings.concurrency, maxSeconds: settings.maxLoadSeconds, log }),
  );
  await step('swarm', 'swarm stack', () =>
    swarmScenarios({ samples: settings.coldStarts, calls: settings.calls, votes: Math.min(settings.votes, 5_000), concurrency: settings.concurrency, log }),
  );
  return { startedAt, durationMs: Math.round(performance.now() - began), machine, settings, scenarios };

  async function embeddedScenarios(): Promise<void> {
    log('starting the app (embedded PostgreSQL, process runtime)...');
    const app: RunningApp = await startApp({ env: options.appEnv ?? {}, nodeArgs: options.appNodeArgs ?? [] });
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      const idleRssMb = await residentMb(app.pid);
      await step('overhead', 'call overhead', () => callOverhead(app, { calls: settings.calls }));
      await step('cold-start', 'cold start', () => coldStart(app, { samples: settings.coldStarts }));
      await step('freshness', 'result freshness', () => freshness(app, { samples: settings.freshnessSamples }));
      await step('throughput', 'vote throughput and memory', () =>
        throughput(app, { votes: settings.votes, concurrency: settings.concurrency, maxSeconds: settings.maxLoadSeconds, idleRssMb }),
      );
      if (!selected.has('throughput')) {
        scenarios.push({ id: 'memory', title: 'Gateway resident size (VmRSS), idle', status: 'ok', metrics: [{ name: 'idle', value: idleRssMb, unit: 'MB' }] });
      }
    } finally {
      log('stopping the app...');
      await app.stop();
    }
  }
}
