// Live viewers: many socket.io clients on the result page while votes arrive at a steady rate.
// For each accepted vote and each viewer, the time from the vote's acceptance (its answer) until
// that viewer holds scores that include it; and the vote rate the app held meanwhile. With 1 and
// 2 edges. The viewers run in threads of their own, so the load reads its answers in time.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { round } from '@voting/loadgen';
import { waitUntil } from '@platform/test-services';
import { startApp } from './app.js';
import { call, keepAlive } from './http.js';
import type { Metric, ScenarioResult } from './types.js';
import { clock, type FromThread, type ToThread } from './viewer-thread.js';

export interface ViewersOptions {
  viewers: number[];
  edges: number[];
  /** Votes per second sent while the viewers watch. */
  rate: number;
  seconds: number;
  appEnv?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
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
/** Threads the viewers are spread over, apart from the load generator's. */
const VIEWER_THREADS = 2;

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

/** Viewers spread over a few threads of their own; each thread's, in order. */
class ViewerThreads {
  private constructor(private readonly threads: Worker[]) {}

  static async connect(url: string, count: number, threads: number): Promise<ViewerThreads> {
    const file = fileURLToPath(new URL('./viewer-thread.js', import.meta.url));
    const shares = Array.from({ length: threads }, (_, i) => Math.floor(count / threads) + (i < count % threads ? 1 : 0)).filter((n) => n > 0);
    const started = shares.map((n) => new Worker(file, { workerData: { url, count: n } }));
    const all = new ViewerThreads(started);
    try {
      await Promise.all(started.map((t) => all.next(t, 'ready')));
    } catch (error) {
      await all.close();
      throw error;
    }
    return all;
  }

  /** What every viewer holds now (its last total). */
  async latest(): Promise<number[]> {
    return (await this.ask('latest')).flatMap((m) => (m.type === 'latest' ? m.totals : []));
  }

  async reset(): Promise<void> {
    await this.ask('reset');
  }

  /** Every viewer's receipt times and totals; the threads end. */
  async report(): Promise<Array<{ at: number[]; totals: number[] }>> {
    const reports = await this.ask('report');
    return reports.flatMap((m) => (m.type === 'report' ? m.at.map((at, i) => ({ at, totals: m.totals[i]! })) : []));
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.terminate()));
  }

  private ask(message: ToThread): Promise<FromThread[]> {
    return Promise.all(
      this.threads.map((t) => {
        const answer = this.next(t, message === 'report' ? 'report' : message);
        t.postMessage(message);
        return answer;
      }),
    );
  }

  private next(thread: Worker, type: FromThread['type']): Promise<FromThread> {
    return new Promise((resolve, reject) => {
      const onMessage = (message: FromThread) => {
        if (message.type === 'failed') {
          done();
          reject(new Error(message.message));
        } else if (message.type === type) {
          done();
          resolve(message);
        }
      };
      const onError = (error: Error) => {
        done();
        reject(error);
      };
      const done = () => {
        thread.off('message', onMessage);
        thread.off('error', onError);
      };
      thread.on('message', onMessage);
      thread.on('error', onError);
    });
  }
}

/** Votes at `rate` per second for `seconds`; answers when each accepted vote was answered, in order. */
async function steadyVotes(url: string, rate: number, seconds: number): Promise<number[]> {
  const agent = keepAlive();
  const acceptedAt: number[] = [];
  const pending = new Set<Promise<void>>();
  const started = clock();
  try {
    for (let i = 0; clock() - started < seconds * 1_000; i++) {
      const due = started + (i * 1_000) / rate;
      const wait = due - clock();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      // A vote is sent when due, whatever the ones before it: the rate held shows what the app keeps up with.
      if (pending.size >= 256) await Promise.race(pending);
      const sent = call(agent, `${url}/function/vote`, {
        method: 'POST',
        body: `{"vote":"${i % 2 ? 'b' : 'a'}"}`,
        headers: { 'content-type': 'application/json' },
      })
        .then((answer) => {
          if (answer.status === 200) acceptedAt.push(clock());
        })
        .catch(() => {})
        .finally(() => pending.delete(sent));
      pending.add(sent);
    }
    await Promise.all(pending);
  } finally {
    agent.destroy();
  }
  return acceptedAt.sort((a, b) => a - b);
}

async function oneRun(url: string, resultUrl: string, edges: number, count: number, rate: number, seconds: number): Promise<ViewersRun> {
  const viewers = await ViewerThreads.connect(resultUrl, count, VIEWER_THREADS);
  try {
    // What every viewer holds once all of them are in step.
    const inStep = async (atLeast: number) => {
      let total = -1;
      await waitUntil(
        async () => {
          const latest = await viewers.latest();
          total = latest[0]!;
          return total >= atLeast && latest.every((t) => t === total);
        },
        { timeoutMs: 15_000, what: `every viewer to hold the same scores, with at least ${atLeast} votes` },
      );
      return total;
    };
    // Warm: every function has its instances before the measured votes (cold starts are another
    // scenario); the run's votes count from where the viewers are once the warm-up's are in.
    const before = await inStep(0);
    const warm = await steadyVotes(url, rate, 1);
    const base = await inStep(before + warm.length);
    await viewers.reset();
    const loadStarted = clock();
    const acceptedAt = await steadyVotes(url, rate, seconds);
    const loadSeconds = (clock() - loadStarted) / 1_000;
    // Every viewer should come to hold every accepted vote (the total may hold more: votes whose
    // answer the load did not see); a few seconds of grace.
    const target = base + acceptedAt.length;
    await waitUntil(async () => (await viewers.latest()).every((t) => t >= target), { timeoutMs: 5_000, intervalMs: 100 }).catch(() => {});
    const histogram = new Uint32Array(BUCKET_LIMIT_MS + 1);
    let samples = 0;
    let unseen = 0;
    let updates = 0;
    for (const v of await viewers.report()) {
      updates += v.at.length;
      let u = 0;
      for (let k = 1; k <= acceptedAt.length; k++) {
        while (u < v.totals.length && v.totals[u]! < base + k) u++;
        if (u === v.totals.length) {
          unseen += acceptedAt.length - k + 1;
          break;
        }
        // Scores that reached a viewer before the vote's answer reached the load count as 0.
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
    await viewers.close();
  }
}

/** Broadcasts the floor server makes per viewer count, and how far apart. */
const FLOOR_BROADCASTS = 20;
const FLOOR_EVERY_MS = 250;

/**
 * The floor for a number of viewers, on this machine: a bare socket.io server (no app, no votes)
 * broadcasting to the same viewer threads; p95 over every viewer and broadcast of the time from
 * the broadcast's start until the viewer holds it.
 */
async function broadcastFloor(count: number): Promise<{ p50: number; p95: number }> {
  const server = fork(fileURLToPath(new URL('./viewers-floor-server.js', import.meta.url)), { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  try {
    const [port] = (await once(server.stdout!, 'data')) as [Buffer];
    const viewers = await ViewerThreads.connect(`http://127.0.0.1:${port.toString().trim()}`, count, VIEWER_THREADS);
    try {
      await viewers.reset();
      const began: number[] = [];
      for (let n = 1; n <= FLOOR_BROADCASTS; n++) {
        const answer = once(server, 'message') as Promise<[{ at: number }]>;
        server.send({ emit: n });
        began[n] = (await answer)[0].at;
        await new Promise((r) => setTimeout(r, FLOOR_EVERY_MS));
      }
      await waitUntil(async () => (await viewers.latest()).every((t) => t >= FLOOR_BROADCASTS), { timeoutMs: 5_000, intervalMs: 100 }).catch(() => {});
      const histogram = new Uint32Array(BUCKET_LIMIT_MS + 1);
      let samples = 0;
      for (const v of await viewers.report()) {
        v.totals.forEach((n, i) => {
          if (began[n] === undefined) return;
          histogram[Math.min(BUCKET_LIMIT_MS, Math.max(0, Math.round(v.at[i]! - began[n]!)))]!++;
          samples++;
        });
      }
      return { p50: percentile(histogram, samples, 50), p95: percentile(histogram, samples, 95) };
    } finally {
      await viewers.close();
    }
  } finally {
    server.kill();
  }
}

export async function liveViewers({ viewers, edges, rate, seconds, appEnv = {}, log = () => {} }: ViewersOptions): Promise<ScenarioResult> {
  const runs: ViewersRun[] = [];
  for (const workers of edges) {
    log(`GATEWAY_WORKERS=${workers}: starting the app...`);
    // Every viewer here connects from loopback: the per-address share of live clients (which
    // keeps one address from taking every place) is raised to let them all in.
    const app = await startApp({ env: { MAX_LIVE_CLIENTS_PER_ADDRESS: String(Math.max(...viewers)), ...appEnv, GATEWAY_WORKERS: String(workers) } });
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
  const floors = new Map<number, { p50: number; p95: number }>();
  for (const count of viewers) {
    log(`${count} viewers of a bare socket.io server, ${FLOOR_BROADCASTS} broadcasts (the floor)...`);
    floors.set(count, await broadcastFloor(count));
  }
  const name = (r: ViewersRun) => `${r.viewers} viewers, ${r.edges === 1 ? '1 edge' : `${r.edges} edges`}`;
  const metrics: Metric[] = runs.flatMap((r) => [
    {
      name: `vote to viewer p95, ${name(r)}`,
      value: r.p95,
      unit: 'ms',
      target: { op: '<', value: 100 },
      floor: { name: 'a bare socket.io broadcast to as many viewers, p95', value: floors.get(r.viewers)!.p95 },
    },
    { name: `votes/s held, ${name(r)}`, value: r.votesPerSecond, unit: 'votes/s', target: { op: '>=', value: rate * 0.95 } },
  ]);
  return {
    id: 'viewers',
    title: `Live viewers: vote accepted until each viewer holds scores with it, at ${rate} votes/s`,
    status: 'ok',
    metrics,
    note: runs
      .map((r) => `${name(r)}: p50 ${r.p50} / p95 ${r.p95} / p99 ${r.p99} ms, ${r.updatesPerViewerPerSecond} updates per viewer per s, ${r.unseen} unseen`)
      .concat([...floors].map(([count, f]) => `bare socket.io broadcast to ${count} viewers: p50 ${f.p50} / p95 ${f.p95} ms`))
      .join('; '),
    details: { rate, seconds, runs, floors: Object.fromEntries(floors) },
  };
}
