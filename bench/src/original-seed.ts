// The original app's own seed load, exactly as its seed command sends it: `ab -n 1000 -c 50 -p posta
// -T application/x-www-form-urlencoded` (form posts `vote=a`, a new connection and a new voter per
// request, 50 at once). Three rounds, each against the app (as `npm start` runs it) and then against
// the machine's floor (a bare node:http server answering 303), so both see the same machine state.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { round } from '@voting/loadgen';
import { cpuByPart, cpuSnapshot, repoRoot, startApp } from './app.js';
import { waitForRecorded } from './recorded.js';
import { warmUp } from './seed-load.js';
import type { Metric, ScenarioResult } from './types.js';

/** What the original's vote page reached under this load on this machine kind, and its share of the floor then. */
const ORIGINAL = { requestsPerSecond: 1_829, shareOfFloor: 0.18 };
const REQUESTS = 1_000;
const CONCURRENCY = 50;
const WARM_UP_ROUNDS = 3;

export interface AbResult {
  complete: number;
  /** ab's failed requests: connection errors, wrong lengths, exceptions. */
  failed: number;
  /** Answers other than 2xx: for a form vote, the 303 that accepts it (and any refusal). */
  non2xx: number;
  requestsPerSecond: number;
  p50: number;
  p99: number;
}

/** The figures of ab's report (`Requests per second:`, `Failed requests:`, the percentile table). */
export function parseAb(output: string): AbResult {
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+([\\d.]+)`, 'm').exec(output);
    if (!match) throw new Error(`ab printed no "${name}": ${output.slice(-400)}`);
    return Number(match[1]);
  };
  const percentile = (p: number) => {
    const match = new RegExp(`^\\s*${p}%\\s+(\\d+)`, 'm').exec(output);
    if (!match) throw new Error(`ab printed no ${p}% line`);
    return Number(match[1]);
  };
  return {
    complete: field('Complete requests'),
    failed: field('Failed requests'),
    non2xx: /^Non-2xx responses:\s+(\d+)/m.test(output) ? field('Non-2xx responses') : 0,
    requestsPerSecond: field('Requests per second'),
    p50: percentile(50),
    p99: percentile(99),
  };
}

async function ab(url: string, postFile: string): Promise<AbResult> {
  const child = spawn('ab', ['-q', '-n', String(REQUESTS), '-c', String(CONCURRENCY), '-p', postFile, '-T', 'application/x-www-form-urlencoded', url], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`ab exited with ${code}: ${output.slice(-400)}`);
  return parseAb(output);
}

/** ab on PATH, installed by the project's script where it can (root, apt); else why not. */
function findAb(log: (line: string) => void): string | undefined {
  const present = () => spawnSync('ab', ['-V'], { stdio: 'ignore' }).status === 0;
  if (present()) return undefined;
  log('ab is not installed: trying infra/scripts/ensure-test-deps.sh ab...');
  const installed = spawnSync('bash', [join(repoRoot, 'infra/scripts/ensure-test-deps.sh'), 'ab'], { encoding: 'utf8' });
  if (present()) return undefined;
  return `ab (Debian's apache2-utils) is not installed and could not be installed here (${(installed.stderr || installed.stdout).trim().split('\n')[0]}): run \`apt-get install apache2-utils\` as root`;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export async function originalSeedLoad({
  rounds = 3,
  appEnv = {},
  log = () => {},
}: {
  rounds?: number;
  appEnv?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}): Promise<ScenarioResult> {
  const id = 'original-seed';
  const title = `The original's seed load: ab -n ${REQUESTS} -c ${CONCURRENCY}, form posts vote=a, a new connection and voter per request; ${WARM_UP_ROUNDS} rounds to warm up, then ${rounds}, each against the app (npm start defaults) and the bare node:http floor`;
  const missing = findAb(log);
  if (missing) return { id, title, status: 'not run', reason: missing, metrics: [] };
  const dir = await mkdtemp(join(tmpdir(), 'bench-seed-'));
  const postFile = join(dir, 'posta');
  await writeFile(postFile, 'vote=a');
  const floor = spawn(process.execPath, [fileURLToPath(new URL('./floor-server.js', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
  const app = await startApp({ env: appEnv });
  const db = new pg.Client({ connectionString: app.databaseUrl });
  try {
    const [port] = (await once(floor.stdout, 'data')) as [Buffer];
    const floorUrl = `http://127.0.0.1:${port.toString().trim()}/`;
    await db.connect();
    const count = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM votes')).rows[0]!.n;
    // The steady state: instances started and the code warm (the first rounds after a start are
    // slower, and grow faster round by round).
    await warmUp(app.url);
    for (let i = 0; i < WARM_UP_ROUNDS; i++) await ab(`${app.url}/`, postFile);
    const appRuns: AbResult[] = [];
    const floorRuns: AbResult[] = [];
    const cpu: Record<string, number> = {};
    let accepted = 0;
    let unrecorded = 0;
    for (let i = 1; i <= rounds; i++) {
      log(`round ${i} of ${rounds}: the app, then the floor...`);
      const before = await count();
      const cpuBefore = await cpuSnapshot();
      const run = await ab(`${app.url}/`, postFile);
      // Every vote is a new voter's: one more row each, once recorded. ab cannot tell a 303 from a
      // refusal, so a request without its row is counted, whether it was refused or lost.
      const { rows } = await waitForRecorded(count, { expected: before + run.complete, since: performance.now(), timeoutMs: 10_000, intervalMs: 50 });
      for (const [part, ms] of Object.entries(cpuByPart(cpuBefore, await cpuSnapshot(), app.pid))) cpu[part] = (cpu[part] ?? 0) + ms;
      appRuns.push(run);
      accepted += rows - before;
      unrecorded += Math.max(0, run.complete - (rows - before));
      floorRuns.push(await ab(floorUrl, postFile));
    }
    const appRate = median(appRuns.map((r) => r.requestsPerSecond));
    const floorRate = median(floorRuns.map((r) => r.requestsPerSecond));
    const perVote = (ms: number) => round(ms / Math.max(1, accepted), 3);
    const parts = Object.entries(cpu).filter(([part]) => part !== 'other');
    const total = parts.reduce((sum, [, ms]) => sum + ms, 0);
    const metrics: Metric[] = [
      {
        name: `requests per second, median of ${rounds}`,
        value: round(appRate, 0),
        unit: 'requests/s',
        target: { op: '>=', value: ORIGINAL.requestsPerSecond },
        floor: { name: 'bare node:http answering 303, same rounds', value: round(floorRate, 0) },
      },
      { name: 'share of the floor', value: round(appRate / floorRate, 3), unit: 'x', target: { op: '>=', value: ORIGINAL.shareOfFloor } },
      { name: `latency p50, median of ${rounds}`, value: median(appRuns.map((r) => r.p50)), unit: 'ms' },
      { name: `latency p99, median of ${rounds}`, value: median(appRuns.map((r) => r.p99)), unit: 'ms', target: { op: '<', value: 50 } },
      { name: 'failed requests (ab), all rounds', value: appRuns.reduce((sum, r) => sum + r.failed, 0), unit: 'requests' },
      { name: 'requests without a recorded vote (refused or lost), all rounds', value: unrecorded, unit: 'requests', target: { op: '=', value: 0 } },
      { name: 'CPU per vote, all processes (app and ab)', value: perVote(total), unit: 'ms', target: { op: '<=', value: 0.8 } },
      ...parts.sort(([, a], [, b]) => b - a).map(([part, ms]) => ({ name: `  CPU per vote, ${part}`, value: perVote(ms), unit: 'ms' })),
    ];
    return {
      id,
      title,
      status: 'ok',
      metrics,
      note: `the original's vote page reached ${ORIGINAL.requestsPerSecond.toLocaleString('en-US')} requests/s (${ORIGINAL.shareOfFloor} of the floor) under this load on this machine kind; every vote here is durably queued before its answer, the original's is not`,
      details: { rounds, requests: REQUESTS, concurrency: CONCURRENCY, app: appRuns, floor: floorRuns, accepted, cpuMsByPart: cpu },
    };
  } finally {
    await db.end().catch(() => {});
    await app.stop();
    floor.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}
