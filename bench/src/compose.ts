// Vote throughput end to end against `docker compose up` of the real docker-compose.yml (docker
// runtime, Redis queue): votes accepted per second, and the time until every accepted vote shows
// in the tallies, which the results function reads from PostgreSQL (one row per voter).
import { performance } from 'node:perf_hooks';
import { round } from '@voting/loadgen';
import { seedLoad, warmUp } from './seed-load.js';
import { startComposeApp, waitUntil } from '@platform/test-services';
import { dockerState } from './docker.js';
import { waitForRecorded } from './recorded.js';
import type { ScenarioResult } from './types.js';

const id = 'throughput-compose';
const title = 'Vote throughput end to end, compose (docker runtime, Redis queue; form posts, a new voter per vote)';

async function recorded(url: string): Promise<number> {
  const scores = (await (await fetch(`${url}/function/results`)).json()) as { a?: number; b?: number };
  return (scores.a ?? 0) + (scores.b ?? 0);
}

export async function composeThroughput({
  votes = 20_000,
  concurrency = 64,
  maxSeconds = 45,
  log = () => {},
}: {
  votes?: number;
  concurrency?: number;
  maxSeconds?: number;
  log?: (line: string) => void;
} = {}): Promise<ScenarioResult> {
  const docker = dockerState();
  if (!docker.up) return { id, title, status: 'not run', reason: `${docker.why}: no compose deployment to measure`, metrics: [] };
  log('starting docker compose up of docker-compose.yml...');
  const app = await startComposeApp({ project: `voting-bench-${process.pid}`, log });
  try {
    const warm = await warmUp(app.voteUrl);
    await waitUntil(async () => (await recorded(app.voteUrl)) >= warm.distinctVoters, { timeoutMs: 60_000, what: 'warm-up votes to be recorded' });
    const before = await recorded(app.voteUrl);
    const summary = await seedLoad(app.voteUrl, { votes, concurrency, signal: AbortSignal.timeout(maxSeconds * 1_000) });
    const loadEnded = performance.now();
    const expected = before + summary.distinctVoters;
    const { rows, recordedMs } = await waitForRecorded(() => recorded(app.voteUrl), { expected, since: loadEnded, timeoutMs: 60_000, intervalMs: 20 });
    return {
      id,
      title,
      status: 'ok',
      metrics: [
        { name: 'votes accepted per second', value: summary.votesPerSecond, unit: 'votes/s' },
        { name: 'accept latency p99', value: summary.latencyMs.p99, unit: 'ms' },
        {
          name: 'all accepted votes recorded after the load stopped',
          value: round(recordedMs ?? performance.now() - loadEnded, 0),
          unit: 'ms',
          missing: recordedMs === undefined,
        },
        { name: 'accepted votes lost', value: Math.max(0, expected - rows), unit: 'votes', target: { op: '=', value: 0 } },
      ],
      details: {
        sent: summary.sent,
        accepted: summary.accepted,
        rejected: summary.rejected,
        errors: summary.errors,
        concurrency,
        latencyMs: summary.latencyMs,
        votesExpected: expected,
        votesCounted: rows,
      },
    };
  } finally {
    await app.stop();
  }
}
