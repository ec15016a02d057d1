// The scenarios. Each returns figures with the project's targets beside them; an engine that is
// not there gives a "not run" result with the reason, never a silent omission.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { io } from 'socket.io-client';
import { INVOKE_TOKEN_ENV, INVOKE_TOKEN_HEADER } from '@platform/function-contract';
import { round, summarize, type LatencySummary } from '@voting/loadgen';
import { seedLoad, warmUp } from './seed-load.js';
import { waitUntil } from '@platform/test-services';
import { childProcesses, cpuByPart, cpuSnapshot, repoRoot, residentMb, type RunningApp } from './app.js';
import { call, keepAlive } from './http.js';
import { httpFloor } from './floor.js';
import { measureOverhead } from './overhead.js';
import { waitForRecorded } from './recorded.js';
import type { ScenarioResult } from './types.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Fails with the answer when a call did not get the expected status. */
function expectStatus(answer: { status: number; body: string }, status: number, what: string): void {
  if (answer.status !== status) throw new Error(`${what} answered ${answer.status}: ${answer.body.slice(0, 200)}`);
}

// ---------------------------------------------------------------------------------------------
// Call overhead: a warm function through the gateway vs its instance's own /_/invoke.

export async function callOverhead(app: RunningApp, { calls = 2_000 }: { calls?: number } = {}): Promise<ScenarioResult> {
  const agent = keepAlive();
  const viaGateway = `${app.url}/function/results/options`;
  try {
    expectStatus(await call(agent, viaGateway), 200, 'GET /function/results/options');
    const [instance] = await childProcesses(app.pid, `${join(repoRoot, 'functions/results')}/`);
    const socketPath = instance?.env.FN_SOCKET;
    if (!socketPath) throw new Error('could not find the warm results instance (a child of the gateway with FN_SOCKET in its environment)');
    const invocation = JSON.stringify({ callId: 'bench', request: { method: 'GET', path: '/options', query: {}, headers: {}, body: '' } });
    const headers = { 'content-type': 'application/json', [INVOKE_TOKEN_HEADER]: instance?.env[INVOKE_TOKEN_ENV] ?? '' };
    return await measureOverhead({
      id: 'call-overhead',
      title: 'Call overhead: warm function through the gateway vs its instance directly',
      calls,
      what: 'results GET /options',
      directName: 'instance directly',
      viaGateway: async () => expectStatus(await call(agent, viaGateway), 200, 'GET /function/results/options'),
      direct: async () => expectStatus(await call(agent, '/_/invoke', { method: 'POST', body: invocation, headers, socketPath }), 200, 'POST /_/invoke'),
    });
  } finally {
    agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Cold start: first call at zero instances vs a bare one-shot `node` run of the same file.

async function functionStatus(app: RunningApp, name: string): Promise<{ replicas: number; instances: string[] }> {
  const list = (await (await fetch(`${app.url}/system/functions`)).json()) as Array<{ name: string; replicas: number; instances?: string[] }>;
  const found = list.find((f) => f.name === name);
  if (!found) throw new Error(`function ${name} not in /system/functions`);
  return { replicas: found.replicas, instances: found.instances ?? [] };
}

/** Stops every warm instance of a function (SIGTERM: they drain and exit) and waits for the pool to see it. */
async function scaleToZero(app: RunningApp, name: string): Promise<void> {
  for (const child of await childProcesses(app.pid, `${join(repoRoot, 'functions', name)}/`)) process.kill(child.pid, 'SIGTERM');
  await waitUntil(async () => (await functionStatus(app, name)).replicas === 0, { timeoutMs: 15_000, intervalMs: 10, what: `${name} at zero instances` });
}

/** A bare `node` start of the function's file in one-shot mode, its invocation on stdin, like the runtime's spawn. */
function bareNodeRun(file: string, invocation: string, env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const began = performance.now();
    const child = spawn(process.execPath, ['--max-old-space-size=128', file], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - began;
      if (code !== 0 || !out.includes('"status":200')) reject(new Error(`bare node run exited ${code}: ${out.slice(0, 200)}`));
      else resolve(ms);
    });
    child.stdin.end(invocation);
  });
}

export async function coldStart(app: RunningApp, { samples = 8 }: { samples?: number } = {}): Promise<ScenarioResult[]> {
  const fn = 'vote';
  const file = join(repoRoot, 'functions', fn, 'dist/main.js');
  const invocation = JSON.stringify({ callId: 'bench', request: { method: 'GET', path: '/', query: {}, headers: {}, body: '' } });
  // The environment the process runtime gives the function: PATH and the manifest's variables only.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', FN_MODE: 'oneshot', FN_NAME: fn, FN_ENV: 'OPTION_A,OPTION_B', OPTION_A: 'Cats', OPTION_B: 'Dogs' };
  const runtime: number[] = [];
  const bare: number[] = [];
  await bareNodeRun(file, invocation, env); // file system caches warm for both sides
  for (let i = 0; i < samples; i++) {
    await scaleToZero(app, fn);
    const agent = keepAlive();
    const t = performance.now();
    const answer = await call(agent, `${app.url}/function/${fn}`);
    runtime.push(performance.now() - t);
    agent.destroy();
    expectStatus(answer, 200, `GET /function/${fn}`);
    bare.push(await bareNodeRun(file, invocation, env));
  }
  const r = summarize(runtime);
  const b = summarize(bare);
  const results: ScenarioResult[] = [
    {
      id: 'cold-start-process',
      title: 'Cold start, process runtime: first call at zero instances vs a bare node start of the same file',
      status: 'ok',
      metrics: [
        { name: 'first call at zero instances, median', value: r.p50, unit: 'ms', floor: { name: 'bare node one-shot', value: b.p50 } },
        { name: 'ratio to bare node, median', value: round(r.p50 / b.p50, 2), unit: 'x', target: { op: '<=', value: 1.2 } },
      ],
      details: { function: `${fn} GET /`, samples, processRuntimeMs: r, bareNodeMs: b },
    },
  ];
  return results;
}

// ---------------------------------------------------------------------------------------------
// Vote throughput end to end, and memory under that load.

export async function throughput(
  app: RunningApp,
  { votes = 20_000, concurrency = 64, maxSeconds = 45, idleRssMb }: { votes?: number; concurrency?: number; maxSeconds?: number; idleRssMb?: number } = {},
): Promise<ScenarioResult[]> {
  const db = new pg.Client({ connectionString: app.databaseUrl });
  await db.connect();
  const count = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM votes')).rows[0]!.n;
  try {
    // Warm instances first: the figure is the steady state, cold starts have their own scenario.
    const warm = await warmUp(app.url);
    await waitUntil(async () => (await count()) >= warm.distinctVoters, { timeoutMs: 30_000, what: 'warm-up votes to be recorded' });
    const before = await count();

    const rss: number[] = [];
    const sampler = setInterval(
      () =>
        void residentMb(app.pid).then(
          (mb) => rss.push(mb),
          () => {},
        ),
      100,
    );
    const stop = AbortSignal.timeout(maxSeconds * 1_000);
    const cpuBefore = await cpuSnapshot();
    const summary = await seedLoad(app.url, { votes, concurrency, signal: stop });
    const loadEnded = performance.now();
    const expected = before + summary.distinctVoters;
    const { rows, recordedMs } = await waitForRecorded(count, { expected, since: loadEnded, timeoutMs: 30_000 });
    clearInterval(sampler);
    const cpu = cpuByPart(cpuBefore, await cpuSnapshot(), app.pid);
    const perVote = (ms: number) => round(ms / Math.max(1, summary.accepted), 3);
    const appCpuMs = Object.entries(cpu)
      .filter(([part]) => part !== 'other')
      .reduce((sum, [, ms]) => sum + ms, 0);
    // After the app is idle again, so the floor has the machine to itself as the app had.
    const floorPerSecond = await httpFloor({ votes: Math.min(votes, 20_000), concurrency });
    const lost = Math.max(0, expected - rows);
    const peak = rss.length ? Math.max(...rss) : await residentMb(app.pid);
    return [
      {
        id: 'throughput-embedded',
        title: 'Vote throughput end to end, embedded (form posts, a new voter per vote)',
        status: 'ok',
        metrics: [
          {
            name: 'votes accepted per second',
            value: summary.votesPerSecond,
            unit: 'votes/s',
            target: { op: '>=', value: 5_000 },
            floor: { name: 'bare node:http, one hop, same load', value: floorPerSecond },
          },
          { name: 'accept latency p99', value: summary.latencyMs.p99, unit: 'ms', target: { op: '<', value: 50 } },
          {
            name: 'all accepted votes recorded after the load stopped',
            value: round(recordedMs ?? performance.now() - loadEnded, 0),
            unit: 'ms',
            missing: recordedMs === undefined,
            target: { op: '<', value: 2_000 },
          },
          { name: 'votes lost (accepted, not in `votes`)', value: lost, unit: 'votes', target: { op: '=', value: 0 } },
          { name: 'votes not accepted', value: summary.failed, unit: 'votes' },
          // Where the two cores go: CPU per accepted vote of the app's parts and of the load generator.
          { name: 'CPU per vote, app and load generator', value: perVote(appCpuMs), unit: 'ms' },
          ...Object.entries(cpu)
            .filter(([part]) => part !== 'other')
            .sort(([, a], [, b]) => b - a)
            .map(([part, ms]) => ({ name: `  CPU per vote, ${part}`, value: perVote(ms), unit: 'ms' })),
        ],
        details: {
          sent: summary.sent,
          accepted: summary.accepted,
          rejected: summary.rejected,
          errors: summary.errors,
          concurrency,
          latencyMs: summary.latencyMs,
          durationMs: summary.durationMs,
          rowsExpected: expected,
          rowsFound: rows,
          recordedWithin30s: recordedMs !== undefined,
          cpuMsByPart: cpu,
          stoppedAtMaxSeconds: stop.aborted,
        },
      },
      {
        id: 'memory',
        title: 'Gateway resident size (VmRSS), idle and under load',
        status: 'ok',
        metrics: [
          ...(idleRssMb === undefined ? [] : [{ name: 'idle', value: idleRssMb, unit: 'MB' }]),
          { name: 'peak under load', value: peak, unit: 'MB', floor: idleRssMb === undefined ? undefined : { name: 'idle', value: idleRssMb } },
        ],
        details: { samples: rss.length, meanUnderLoadMb: rss.length ? round(rss.reduce((a, b) => a + b, 0) / rss.length, 1) : undefined },
      },
    ];
  } finally {
    await db.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Result freshness: a vote's acceptance until a socket.io client gets scores that include it.

export async function freshness(app: RunningApp, { samples = 200, gapMs = 10 }: { samples?: number; gapMs?: number } = {}): Promise<ScenarioResult> {
  const socket = io(app.resultUrl, { transports: ['websocket'], reconnection: false });
  let total = -1;
  let waiter: { target: number; resolve: () => void } | undefined;
  socket.on('scores', (json: string) => {
    const scores = JSON.parse(json) as { a: number; b: number };
    total = scores.a + scores.b;
    if (waiter && total >= waiter.target) {
      waiter.resolve();
      waiter = undefined;
    }
  });
  const agent = keepAlive();
  try {
    await waitUntil(() => total >= 0, { timeoutMs: 15_000, what: 'the first scores event' });
    const ages: number[] = [];
    let missed = 0;
    for (let i = 0; i < samples; i++) {
      const target = total + 1;
      const seen = new Promise<void>((resolve) => (waiter = { target, resolve }));
      const answer = await call(agent, `${app.url}/function/vote`, {
        method: 'POST',
        body: `{"vote":"${i % 2 ? 'b' : 'a'}"}`,
        headers: { 'content-type': 'application/json' },
      });
      expectStatus(answer, 200, 'POST /function/vote');
      const accepted = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([seen.then(() => 'seen' as const), new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), 5_000)))]);
      clearTimeout(timer);
      if (outcome === 'late') missed++;
      else ages.push(performance.now() - accepted);
      await sleep(gapMs);
    }
    // A scores event that came before the vote's answer reached us counts as 0 (it is in `ages` as ~0).
    const s: LatencySummary = summarize(ages);
    return {
      id: 'freshness',
      title: 'Result freshness: vote accepted until a socket.io client receives scores that include it',
      status: 'ok',
      metrics: [
        { name: 'median', value: s.p50, unit: 'ms' },
        { name: 'p95', value: s.p95, unit: 'ms', target: { op: '<', value: 100 } },
        { name: 'votes never seen within 5 s', value: missed, unit: 'votes', target: { op: '=', value: 0 } },
      ],
      details: { samples, gapMs, ms: s },
    };
  } finally {
    socket.close();
    agent.destroy();
  }
}
