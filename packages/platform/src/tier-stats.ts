// The whole tier's live figures of one function, merged from what each edge reports of the calls
// it served: counts add up, latency percentiles come from the edges' latencies put together (never
// from averaged percentiles), and the newest errors of all edges come first. Pure: no clock, no I/O.
import type { LiveFunction } from '@platform/protocol';

/** Calls per second are counted over this window; latency percentiles over LATENCY_WINDOW_MS. */
export const RATE_WINDOW_MS = 10_000;
export const LATENCY_WINDOW_MS = 60_000;
/** An edge's report older than this no longer counts: that edge is gone, or cut off. */
export const REPORT_MAX_AGE_MS = 3_000;
export const LAST_ERRORS = 5;

/** Latencies below this many ms have a bucket of their own (exact); above, buckets grow geometrically. */
const EXACT_BELOW_MS = 16;
/** Buckets per doubling above EXACT_BELOW_MS: a bucket's middle is within 2.2% of everything in it. */
const STEPS_PER_DOUBLING = 16;

export type LastError = LiveFunction['lastErrors'][number];

/** One edge's figures of one function, as it publishes them about once a second. */
export interface EdgeFigures {
  inFlight: number;
  waiting: number;
  /** Calls this edge finished since it started. */
  invocationCount: number;
  /** Calls finished within the last RATE_WINDOW_MS. */
  recentCalls: number;
  /** The latencies of its recent calls (within LATENCY_WINDOW_MS), as [bucket, count] pairs: see latencyBucket. */
  latency: Array<[number, number]>;
  /** Its newest failures, newest first. */
  errors: LastError[];
}

/** This edge's own figures, with its latencies exact (for when it is the only edge that served any). */
export interface OwnFigures extends EdgeFigures {
  samples: number[];
}

/** What the dashboard and /system/functions show of a function for the whole tier. */
export type TierFigures = Pick<LiveFunction, 'inFlight' | 'waiting' | 'invocationCount' | 'callsPerSecond' | 'latencyMs' | 'lastErrors'>;

export function latencyBucket(ms: number): number {
  const value = Math.max(0, ms);
  if (value < EXACT_BELOW_MS) return Math.floor(value);
  return EXACT_BELOW_MS + Math.floor(STEPS_PER_DOUBLING * Math.log2(value / EXACT_BELOW_MS));
}

/** The value a bucket stands for: itself below EXACT_BELOW_MS, else its geometric middle. */
export function bucketValue(bucket: number): number {
  if (bucket < EXACT_BELOW_MS) return bucket;
  return EXACT_BELOW_MS * 2 ** ((bucket - EXACT_BELOW_MS + 0.5) / STEPS_PER_DOUBLING);
}

/** Latencies (ms) as [bucket, count] pairs, lowest bucket first. */
export function latencyHistogram(samples: number[]): Array<[number, number]> {
  const counts = new Map<number, number>();
  for (const ms of samples) {
    const bucket = latencyBucket(ms);
    counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => a[0] - b[0]);
}

/** Where the p-th percentile falls among `count` values, lowest first (nearest rank). */
const rank = (p: number, count: number) => Math.min(count - 1, Math.max(0, Math.ceil((p / 100) * count) - 1));
const tenths = (ms: number) => Math.round(ms * 10) / 10;

function exactPercentiles(samples: number[]): TierFigures['latencyMs'] {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => tenths(sorted[rank(p, sorted.length)]!);
  return { p50: at(50), p95: at(95), p99: at(99) };
}

function histogramPercentiles(histograms: Array<Array<[number, number]>>): TierFigures['latencyMs'] {
  const counts = new Map<number, number>();
  for (const pairs of histograms) for (const [bucket, count] of pairs) counts.set(bucket, (counts.get(bucket) ?? 0) + count);
  const buckets = [...counts].sort((a, b) => a[0] - b[0]);
  const total = buckets.reduce((sum, [, count]) => sum + count, 0);
  if (total === 0) return null;
  const at = (p: number) => {
    const wanted = rank(p, total);
    let seen = 0;
    for (const [bucket, count] of buckets) {
      seen += count;
      if (seen > wanted) return tenths(bucketValue(bucket));
    }
    return tenths(bucketValue(buckets.at(-1)![0]));
  };
  return { p50: at(50), p95: at(95), p99: at(99) };
}

/**
 * The tier's figures of one function: this edge's own and the latest report of every other edge
 * (`receivedAt` on this edge's clock; those older than maxAgeMs left out). Latency percentiles
 * are exact while no other edge reports latencies; otherwise they come from the merged buckets.
 */
export function mergeFigures(
  own: OwnFigures,
  others: Array<{ receivedAt: number; figures: EdgeFigures }>,
  now: number,
  { maxAgeMs = REPORT_MAX_AGE_MS, lastErrors = LAST_ERRORS } = {},
): TierFigures {
  const fresh = others.filter((o) => now - o.receivedAt <= maxAgeMs).map((o) => o.figures);
  const all = [own, ...fresh];
  const sum = (figure: (f: EdgeFigures) => number) => all.reduce((total, f) => total + figure(f), 0);
  const othersTimed = fresh.some((f) => f.latency.length > 0);
  return {
    inFlight: sum((f) => f.inFlight),
    waiting: sum((f) => f.waiting),
    invocationCount: sum((f) => f.invocationCount),
    callsPerSecond: tenths(sum((f) => f.recentCalls) / (RATE_WINDOW_MS / 1_000)),
    latencyMs: othersTimed ? histogramPercentiles(all.map((f) => f.latency)) : exactPercentiles(own.samples),
    // Sorting is stable: at equal times, this edge's own come first, in their order.
    lastErrors: all
      .flatMap((f) => f.errors)
      .sort((a, b) => b.at - a.at)
      .slice(0, lastErrors),
  };
}
