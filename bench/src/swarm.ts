// Swarm scenarios against the app deployed as a stack (infra/scripts/stack.sh, RUNTIME=swarm):
// the time from a call to a function at zero replicas until its answer (the service scaled from
// zero, a task scheduled and started, its health answered), and warm-call and vote throughput
// through the stack. Not run (with the reason) when this Docker Engine is no Swarm manager.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { round, summarize } from '@voting/loadgen';
import { seedLoad } from './seed-load.js';
import { freePort, waitUntil } from '@platform/test-services';
import { repoRoot } from './app.js';
import { call, keepAlive } from './http.js';
import type { ScenarioResult } from './types.js';

const FN = 'results';
const PATH = '/function/results/options';

function swarmManager(): string | undefined {
  const info = spawnSync('docker', ['info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'], { encoding: 'utf8', timeout: 5_000 });
  if (info.error || info.status !== 0) return info.error ? 'no docker client on this machine' : 'Docker Engine not reachable';
  if (info.stdout.trim() !== 'active true') return 'this Docker Engine is no Swarm manager (`pnpm stack:deploy` initialises a single-node Swarm)';
  return undefined;
}

/** Tasks of a function service that are running or about to, through the Swarm API. */
/** The id of a warm function's service (one per version of it; the stack's functions have one each). */
function functionService(stack: string, fn: string): string {
  const labels = [`serverless-platform.swarm.owner=${stack}-fn`, `serverless-platform.swarm.function=${fn}`, 'serverless-platform.swarm.mode=warm'];
  const ids = execFileSync('docker', ['service', 'ls', '-q', ...labels.flatMap((l) => ['--filter', `label=${l}`])], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .filter(Boolean);
  if (ids.length !== 1) throw new Error(`expected one service of ${fn} in stack ${stack}, found ${ids.length}`);
  return ids[0]!;
}

function liveTasks(service: string): number {
  const out = execFileSync('docker', ['service', 'ps', '-q', '--filter', 'desired-state=running', service], { encoding: 'utf8' }).trim();
  return out ? out.split('\n').length : 0;
}

export async function swarmScenarios({
  samples = 8,
  calls = 2_000,
  votes = 5_000,
  concurrency = 32,
  log = () => {},
}: {
  samples?: number;
  calls?: number;
  votes?: number;
  concurrency?: number;
  log?: (line: string) => void;
} = {}): Promise<ScenarioResult[]> {
  const cold = { id: 'cold-start-swarm', title: 'Cold start, swarm runtime: a call to a function at zero replicas until its answer' };
  const warm = { id: 'throughput-swarm', title: 'Throughput through the Swarm stack (warm calls, and form posts with a new voter each)' };
  const why = swarmManager();
  if (why) return [cold, warm].map((s) => ({ ...s, status: 'not run' as const, reason: why, metrics: [] }));

  const stack = `bench-${process.pid}`;
  const secrets = mkdtempSync(join(tmpdir(), 'voting-bench-secrets-'));
  const [votePort, resultPort] = await Promise.all([freePort(), freePort()]);
  const env = { ...process.env, VOTE_PORT: String(votePort), RESULT_PORT: String(resultPort), VOTING_SECRETS: secrets, LOG_LEVEL: 'warn' };
  const script = (...args: string[]) =>
    execFileSync('bash', [join(repoRoot, 'infra/scripts/stack.sh'), ...args], { cwd: repoRoot, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  log(`deploying stack ${stack}...`);
  try {
    script('deploy', stack);
    const url = `http://127.0.0.1:${votePort}`;
    const token = readFileSync(join(secrets, 'gateway-admin-token'), 'utf8').trim();
    const agent = keepAlive();
    const service = functionService(stack, FN);

    // Cold: the gateway scales the function to zero (its service to 0 replicas), the Swarm API
    // shows no task left, then one call is timed.
    const coldMs: number[] = [];
    for (let i = 0; i < samples; i++) {
      const scaled = await call(agent, `${url}/system/scale-function/${FN}`, {
        method: 'POST',
        body: JSON.stringify({ replicas: 0 }),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      });
      if (scaled.status !== 200) throw new Error(`scale to zero answered ${scaled.status}: ${scaled.body.slice(0, 200)}`);
      await waitUntil(() => liveTasks(service) === 0, { timeoutMs: 30_000, intervalMs: 100, what: `${service} at zero tasks` });
      const t = performance.now();
      const answer = await call(agent, `${url}${PATH}`);
      coldMs.push(performance.now() - t);
      if (answer.status !== 200) throw new Error(`a call at zero replicas answered ${answer.status}: ${answer.body.slice(0, 200)}`);
    }
    const c = summarize(coldMs);

    // Warm: calls in flight through the gateway to the running task.
    const warmMs: number[] = [];
    let next = 0;
    const began = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next++ < calls) {
          const t = performance.now();
          const answer = await call(agent, `${url}${PATH}`);
          if (answer.status !== 200) throw new Error(`a warm call answered ${answer.status}`);
          warmMs.push(performance.now() - t);
        }
      }),
    );
    const callsPerSecond = calls / ((performance.now() - began) / 1_000);
    const w = summarize(warmMs);
    const seed = await seedLoad(url, { votes, concurrency });
    agent.destroy();
    return [
      {
        ...cold,
        status: 'ok',
        metrics: [
          { name: 'median', value: c.p50, unit: 'ms', target: { op: '<', value: 1_000 } },
          { name: 'p95', value: c.p95, unit: 'ms' },
        ],
        details: { samples, function: FN, coldMs: coldMs.map((v) => round(v, 1)), summary: c, openFaasOnSwarm: '1-3 s (reported)' },
      },
      {
        ...warm,
        status: 'ok',
        metrics: [
          { name: 'warm calls per second', value: round(callsPerSecond, 0), unit: 'calls/s' },
          { name: 'warm call p99', value: w.p99, unit: 'ms' },
          { name: 'votes accepted per second', value: seed.votesPerSecond, unit: 'votes/s' },
          { name: 'votes not accepted', value: seed.failed, unit: 'votes', target: { op: '=', value: 0 } },
        ],
        details: {
          calls,
          concurrency,
          warm: w,
          votes: { sent: seed.sent, accepted: seed.accepted, rejected: seed.rejected, errors: seed.errors, latencyMs: seed.latencyMs },
        },
      },
    ];
  } finally {
    log(`removing stack ${stack}...`);
    script('rm', stack, '--volumes');
    rmSync(secrets, { recursive: true, force: true });
  }
}
