// Live viewers: many socket.io clients on the result page while votes arrive at a steady rate.
// For each vote and each viewer, the time from the vote's acceptance until that viewer holds
// scores that include it; and the vote rate the app held meanwhile. With 1 and 2 edges.
import { performance } from 'node:perf_hooks';
import { io, type Socket } from 'socket.io-client';
import { round } from '@voting/loadgen';
import { waitUntil } from '@platform/test-services';
import { startApp } from './app.js';
import { call, keepAlive } from './http.js';
import type { Metric, ScenarioResult } from './types.js';

export interface ViewersOptions {
  viewers: number[];
  edges: number[];
  /** Votes per second sent while the viewers watch. */
  rate: number;
  seconds: number;
  appEnv?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

interface Viewer {
  socket: Socket;
  /** Receipt times (performance.now()) and totals (a + b) of the scores it got. */
  at: number[];
  totals: number[];
}

interface ViewersRun {
  edges: number;
  viewers: number;
  accepted: number;
  votesPerSecond: number;
  p50: number;
  p95: number;
  p99: number;
  /** Viewer-vote pairs never seen within the grace after the load. */
  unseen: number;
  updatesPerViewerPerSecond: number;
}

const BUCKET_LIMIT_MS = 60_000;

/** Percentile of a histogram of 1 ms buckets. */
function percentile(histogram: Uint32Array, count: number, p: number): number {
  const rank = Math.ceil((p / 100) * count);
  let seen = 0;
  for (let ms = 0; ms < histogram.length; ms++) {
    seen += histogram[ms]!;
    if (seen >= rank) return ms;
  }
  return BUCKET_LIMIT_MS;
}

async function connectViewers(url: string, count: number): Promise<Viewer[]> {
  const viewers: Viewer[] = [];
  // In batches, as a room fills up, so that the handshakes do not all land at once.
  for (let i = 0; i < count; i += 250) {
    const batch = Array.from({ length: Math.min(250, count - i) }, () => {
      const viewer: Viewer = { socket: io(url, { transports: ['websocket'], reconnection: false, forceNew: true }), at: [], totals: [] };
      viewer.socket.on('scores', (json: string) => {
        const scores = JSON.parse(json) as { a: number; b: number };
        viewer.at.push(performance.now());
        viewer.totals.push(scores.a + scores.b);
      });
      return viewer;
    });
    viewers.push(...batch);
    await waitUntil(() => batch.every((v) => v.totals.length > 0), { timeoutMs: 60_000, what: `viewers ${i + 1}-${i + batch.length} to get scores` });
  }
  return viewers;
}

/** Votes at `rate` per second for `seconds`; answers when each accepted vote was accepted, in order. */
async function steadyVotes(url: string, rate: number, seconds: number): Promise<number[]> {
  const agent = keepAlive();
  const acceptedAt: number[] = [];
  const pending = new Set<Promise<void>>();
  const started = performance.now();
  try {
    for (let i = 0; performance.now() - started < seconds * 1_000; i++) {
      const due = started + (i * 1_000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      // A vote is sent when due, whatever the ones before it: the rate held shows what the app keeps up with.
      if (pending.size >= 256) await Promise.race(pending);
      const sent = call(agent, `${url}/function/vote`, {
        method: 'POST',
        body: `{"vote":"${i % 2 ? 'b' : 'a'}"}`,
        headers: { 'content-type': 'application/json' },
      })
        .then((answer) => {
          if (answer.status === 200) acceptedAt.push(performance.now());
        })
        .catch(() => {})
        .finally(() => pending.delete(sent));
      pending.add(sent);
    }
    await Promise.all(pending);
  } finally {
    agent.destroy();
  }
  return acceptedAt;
}

async function oneRun(url: string, resultUrl: string, edges: number, count: number, rate: number, seconds: number): Promise<ViewersRun> {
  const viewers = await connectViewers(resultUrl, count);
  try {
    // What every viewer holds before the load: the run's votes count from there.
    const base = Math.max(...viewers.map((v) => v.totals[v.totals.length - 1]!));
    await waitUntil(() => viewers.every((v) => v.totals[v.totals.length - 1] === base), { timeoutMs: 10_000, what: 'every viewer to hold the same scores' });
    for (const v of viewers) {
      v.at.length = 0;
      v.totals.length = 0;
    }
    const loadStarted = performance.now();
    const acceptedAt = await steadyVotes(url, rate, seconds);
    const loadSeconds = (performance.now() - loadStarted) / 1_000;
    // Every viewer should come to hold every accepted vote (the total may hold more: votes whose
    // answer the load did not see); a few seconds of grace.
    const target = base + acceptedAt.length;
    await waitUntil(() => viewers.every((v) => (v.totals[v.totals.length - 1] ?? base) >= target), { timeoutMs: 5_000, intervalMs: 100 }).catch(() => {});
    const histogram = new Uint32Array(BUCKET_LIMIT_MS + 1);
    let samples = 0;
    let unseen = 0;
    let updates = 0;
    for (const v of viewers) {
      updates += v.at.length;
      let u = 0;
      for (let k = 1; k <= acceptedAt.length; k++) {
        while (u < v.totals.length && v.totals[u]! < base + k) u++;
        if (u === v.totals.length) {
          unseen += acceptedAt.length - k + 1;
          break;
        }
        // Scores that came before the vote's answer reached the load count as 0.
        const ms = Math.max(0, Math.round(v.at[u]! - acceptedAt[k - 1]!));
        histogram[Math.min(ms, BUCKET_LIMIT_MS)]!++;
        samples++;
      }
    }
    return {
      edges,
      viewers: count,
      accepted: acceptedAt.length,
      votesPerSecond: round(acceptedAt.length / loadSeconds, 0),
      p50: percentile(histogram, samples, 50),
      p95: percentile(histogram, samples, 95),
      p99: percentile(histogram, samples, 99),
      unseen,
      updatesPerViewerPerSecond: round(updates / count / loadSeconds, 1),
    };
  } finally {
    for (const v of viewers) v.socket.close();
  }
}

export async function liveViewers({ viewers, edges, rate, seconds, appEnv = {}, log = () => {} }: ViewersOptions): Promise<ScenarioResult> {
  const runs: ViewersRun[] = [];
  for (const workers of edges) {
    log(`GATEWAY_WORKERS=${workers}: starting the app...`);
    const app = await startApp({ env: { ...appEnv, GATEWAY_WORKERS: String(workers) } });
    try {
      for (const count of viewers) {
        log(`${count} viewers, ${rate} votes/s for ${seconds} s, ${workers === 1 ? '1 edge' : `${workers} edges`}...`);
        runs.push(await oneRun(app.url, app.resultUrl, workers, count, rate, seconds));
        // The closed sockets leave before the next count connects.
        await new Promise((r) => setTimeout(r, 1_000));
      }
    } finally {
      await app.stop();
    }
  }
  const name = (r: ViewersRun) => `${r.viewers} viewers, ${r.edges === 1 ? '1 edge' : `${r.edges} edges`}`;
  const metrics: Metric[] = runs.flatMap((r) => [
    { name: `vote to viewer p95, ${name(r)}`, value: r.p95, unit: 'ms', target: { op: '<', value: 100 } },
    { name: `votes/s held, ${name(r)}`, value: r.votesPerSecond, unit: 'votes/s', target: { op: '>=', value: rate * 0.95 } },
  ]);
  return {
    id: 'viewers',
    title: `Live viewers: vote accepted until each viewer holds scores with it, at ${rate} votes/s`,
    status: 'ok',
    metrics,
    note: runs
      .map((r) => `${name(r)}: p50 ${r.p50} / p95 ${r.p95} / p99 ${r.p99} ms, ${r.updatesPerViewerPerSecond} updates per viewer per s, ${r.unseen} unseen`)
      .join('; '),
    details: { rate, seconds, runs },
  };
}
