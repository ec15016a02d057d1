// Vote throughput by number of edges: the app started fresh with GATEWAY_WORKERS = 1, 2 and (on
// more than 2 cores) one per core, the same load against each (form posts, a new voter per vote),
// and where the CPU goes by process role. With 1, one process is both the controller and the edge.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { round, type SeedSummary } from '@voting/loadgen';
import { seedLoad, warmUp } from './seed-load.js';
import { waitUntil } from '@platform/test-services';
import { cpuSnapshot, startApp } from './app.js';
import { httpFloor } from './floor.js';
import { waitForRecorded } from './recorded.js';
import type { Metric, ScenarioResult } from './types.js';

const roles = ['primary', 'edges', 'functions', 'postgresql', 'load generator'] as const;
type Role = (typeof roles)[number];
type Snapshot = Awaited<ReturnType<typeof cpuSnapshot>>;

interface EdgeRun {
  workers: number;
  summary: SeedSummary;
  recordedPerSecond: number;
  lost: number;
  /** Share of the machine's CPU time that was busy from the start of the load until all was recorded. */
  busyPercent: number;
  /** From the start of the load until all was recorded (the CPU figures' window). */
  seconds: number;
  cpuMs: Record<Role | 'other', number>;
}

export interface EdgesOptions {
  votes: number;
  concurrency: number;
  maxSeconds: number;
  appEnv?: NodeJS.ProcessEnv;
  appNodeArgs?: string[];
  log?: (line: string) => void;
}

const label = (workers: number) => (workers === 1 ? '1 edge' : `${workers} edges`);

export async function edgeScaling({ votes, concurrency, maxSeconds, appEnv = {}, appNodeArgs = [], log = () => {} }: EdgesOptions): Promise<ScenarioResult> {
  const cores = availableParallelism();
  const counts = cores > 2 ? [1, 2, cores] : [1, 2];
  const runs: EdgeRun[] = [];
  for (const workers of counts) {
    log(`GATEWAY_WORKERS=${workers}: starting the app, ${votes} votes...`);
    runs.push(await oneRun(workers, { votes, concurrency, maxSeconds, appEnv, appNodeArgs }));
  }
  // With no app running, as the app had the machine to itself.
  const floor = await httpFloor({ votes: Math.min(votes, 20_000), concurrency });
  const each = (name: string, unit: string, value: (r: EdgeRun) => number | undefined, extra: Partial<Metric> = {}): Metric[] =>
    runs.flatMap((r) => {
      const v = value(r);
      return v === undefined ? [] : [{ name: `${name}, ${label(r.workers)}`, value: v, unit, ...extra }];
    });
  const perVote = (r: EdgeRun, ms: number) => round(ms / Math.max(1, r.summary.accepted), 3);
  const one = runs[0]!;
  return {
    id: 'edges',
    title: `Vote throughput by edges: GATEWAY_WORKERS=${counts.join(', ')}, the app started fresh for each, the same load (form posts, a new voter per vote); with 1 the primary is also the edge`,
    status: 'ok',
    metrics: [
      ...each('votes accepted per second', 'votes/s', (r) => r.summary.votesPerSecond, { floor: { name: 'bare node:http, one hop, same load', value: floor } }),
      ...runs.slice(1).map((r) => ({
        name: `growth, ${label(r.workers)} over 1 edge`,
        value: round(r.summary.votesPerSecond / Math.max(1, one.summary.votesPerSecond), 2),
        unit: 'x',
      })),
      ...each('votes recorded per second', 'votes/s', (r) => r.recordedPerSecond),
      ...each('accept latency p50', 'ms', (r) => r.summary.latencyMs.p50),
      ...each('accept latency p99', 'ms', (r) => r.summary.latencyMs.p99),
      ...each('cores busy during the load', '%', (r) => r.busyPercent),
      ...each('CPU per vote, app and load generator', 'ms', (r) => perVote(r, sum(roles.map((role) => r.cpuMs[role])))),
      ...roles.flatMap((role) => each(`  CPU per vote, ${role}`, 'ms', (r) => (role === 'edges' && r.workers === 1 ? undefined : perVote(r, r.cpuMs[role])))),
      { name: 'votes not accepted, all runs', value: sum(runs.map((r) => r.summary.failed)), unit: 'votes' },
      { name: 'accepted votes not recorded, all runs', value: sum(runs.map((r) => r.lost)), unit: 'votes', target: { op: '=', value: 0 } },
    ],
    note: limitLine(runs, cores),
    details: {
      cores,
      concurrency,
      floorVotesPerSecond: floor,
      runs: runs.map((r) => ({
        workers: r.workers,
        sent: r.summary.sent,
        accepted: r.summary.accepted,
        rejected: r.summary.rejected,
        errors: r.summary.errors,
        durationMs: r.summary.durationMs,
        latencyMs: r.summary.latencyMs,
        recordedPerSecond: r.recordedPerSecond,
        lost: r.lost,
        busyPercent: r.busyPercent,
        loadAndRecordSeconds: round(r.seconds, 2),
        cpuMsByRole: r.cpuMs,
      })),
    },
  };
}

async function oneRun(workers: number, { votes, concurrency, maxSeconds, appEnv, appNodeArgs }: Required<Omit<EdgesOptions, 'log'>>): Promise<EdgeRun> {
  const app = await startApp({ env: { ...appEnv, GATEWAY_WORKERS: String(workers) }, nodeArgs: appNodeArgs });
  const db = new pg.Client({ connectionString: app.databaseUrl });
  try {
    await db.connect();
    const count = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM votes')).rows[0]!.n;
    // Warm instances first, on every edge: the figure is the steady state.
    const warm = await warmUp(app.url);
    await waitUntil(async () => (await count()) >= warm.distinctVoters, { timeoutMs: 30_000, what: 'warm-up votes to be recorded' });
    const before = await count();
    const cpuBefore = await cpuSnapshot();
    const machineBefore = await machineTicks();
    const began = performance.now();
    const summary = await seedLoad(app.url, { votes, concurrency, signal: AbortSignal.timeout(maxSeconds * 1_000) });
    const expected = before + summary.distinctVoters;
    const { rows } = await waitForRecorded(count, { expected, since: performance.now(), timeoutMs: 30_000 });
    const seconds = (performance.now() - began) / 1_000;
    const cpuAfter = await cpuSnapshot();
    const machineAfter = await machineTicks();
    return {
      workers,
      summary,
      seconds,
      recordedPerSecond: Math.round(Math.min(rows - before, summary.distinctVoters) / seconds),
      lost: Math.max(0, expected - rows),
      busyPercent: round(((machineAfter.busy - machineBefore.busy) / Math.max(1, machineAfter.total - machineBefore.total)) * 100, 0),
      cpuMs: await cpuByRole(cpuBefore, cpuAfter, app.pid),
    };
  } finally {
    await db.end().catch(() => {});
    await app.stop();
  }
}

/**
 * CPU time (ms) used between two snapshots by the app's process tree, by role: the primary; its
 * node children with CONTROLLER_URL in their environment (edges); its other node children
 * (function instances); PostgreSQL; and this process, the load generator. A child's own children
 * count for it. Processes that ended meanwhile are not counted.
 */
async function cpuByRole(before: Snapshot, after: Snapshot, primary: number): Promise<Record<Role | 'other', number>> {
  const used: Record<Role | 'other', number> = { primary: 0, edges: 0, functions: 0, postgresql: 0, 'load generator': 0, other: 0 };
  const roleOf = new Map<number, Role | 'other'>();
  for (const [pid, now] of after) {
    const ms = now.cpuMs - (before.get(pid)?.cpuMs ?? 0);
    if (pid === process.pid) used['load generator'] += ms;
    else if (pid === primary) used.primary += ms;
    else {
      const child = childOf(primary, pid, after);
      if (child === undefined) continue;
      if (!roleOf.has(child)) roleOf.set(child, await roleOfChild(child, after.get(child)!.name));
      used[roleOf.get(child)!] += ms;
    }
  }
  for (const role of Object.keys(used) as Array<Role | 'other'>) used[role] = Math.round(used[role]);
  return used;
}

/** The child of `primary` that `pid` descends from (or is), if any. */
function childOf(primary: number, pid: number, snapshot: Snapshot): number | undefined {
  for (let p = snapshot.get(pid); p; p = snapshot.get(pid)) {
    if (p.ppid === primary) return pid;
    pid = p.ppid;
  }
  return undefined;
}

async function roleOfChild(pid: number, cmdline: string): Promise<Role | 'other'> {
  if (cmdline.startsWith(`${process.execPath} `)) {
    const env = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
    return env.split('\0').some((pair) => pair.startsWith('CONTROLLER_URL=')) ? 'edges' : 'functions';
  }
  return /postgres/.test(cmdline) ? 'postgresql' : 'other';
}

/** The machine's CPU ticks, busy and in all (the `cpu` line of /proc/stat, guest time being in user). */
async function machineTicks(): Promise<{ busy: number; total: number }> {
  const ticks = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = sum(ticks);
  return { busy: total - ticks[3]! - ticks[4]!, total };
}

/**
 * What limits throughput, read from the fastest run: the cores when nearly all were busy, the
 * primary's one event loop when it used most of a core; more edges costing CPU per vote is said too.
 */
function limitLine(runs: EdgeRun[], cores: number): string {
  const best = runs.reduce((a, b) => (b.summary.votesPerSecond > a.summary.votesPerSecond ? b : a));
  const coresUsed = (r: EdgeRun, role: Role) => r.cpuMs[role] / (r.seconds * 1_000);
  const used = roles
    .map((role) => [role, coresUsed(best, role)] as const)
    .filter(([, c]) => c >= 0.01)
    .sort(([, a], [, b]) => b - a)
    .map(([role, c]) => `${role} ${c.toFixed(2)}`)
    .join(', ');
  const limits: string[] = [];
  if (best.busyPercent >= 85) limits.push(`CPU-bound: edges, functions, PostgreSQL and the load generator share the ${cores} cores`);
  if (coresUsed(best, 'primary') >= 0.75) limits.push(`the primary's one event loop uses ${coresUsed(best, 'primary').toFixed(2)} of a core`);
  if (!limits.length) limits.push('not CPU-bound: the votes wait rather than compute');
  const cpuPerVote = (r: EdgeRun) => sum(roles.map((role) => r.cpuMs[role])) / Math.max(1, r.summary.accepted);
  const costlier = runs.filter((r) => r.workers > best.workers && cpuPerVote(r) > cpuPerVote(best) * 1.1);
  if (costlier.length) {
    const worst = costlier.at(-1)!;
    limits.push(`${label(worst.workers)} cost ${cpuPerVote(worst).toFixed(2)} ms of CPU per vote against ${cpuPerVote(best).toFixed(2)}`);
  }
  return `${cores} cores, ${best.busyPercent}% busy at ${label(best.workers)} (the fastest): ${limits.join('; ')} (cores used: ${used})`;
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
