// Latency statistics: an HDR histogram (3 significant digits, microsecond resolution) so a run of
// millions of requests costs a few kilobytes and percentiles are exact to 0.1 %.
import hdr from 'hdr-histogram-js';

/** Latency percentiles in milliseconds. */
export interface LatencySummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

const HOUR_US = 3_600_000_000;

export class LatencyRecorder {
  private readonly histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: HOUR_US, numberOfSignificantValueDigits: 3 });

  /** Records one latency in milliseconds (fractions kept to the microsecond). */
  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`latency must be a finite number of ms >= 0, got ${ms}`);
    this.histogram.recordValue(Math.min(HOUR_US, Math.max(1, Math.round(ms * 1_000))));
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  /** The value at a percentile (0-100) in ms; 0 when nothing was recorded. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    // The histogram answers a bucket's upper edge; never more than the largest value recorded.
    return round(Math.min(this.histogram.getValueAtPercentile(p), this.histogram.maxValue) / 1_000);
  }

  summary(): LatencySummary {
    if (this.count === 0) return { count: 0, min: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 };
    return {
      count: this.count,
      min: round(this.histogram.minNonZeroValue / 1_000),
      mean: round(this.histogram.mean / 1_000),
      p50: this.percentile(50),
      p95: this.percentile(95),
      p99: this.percentile(99),
      max: round(this.histogram.maxValue / 1_000),
    };
  }
}

/** Summary of a list of millisecond values (small samples: cold starts, freshness). */
export function summarize(values: number[]): LatencySummary {
  const recorder = new LatencyRecorder();
  for (const value of values) recorder.record(value);
  return recorder.summary();
}

/** Rounds to 3 decimals (microseconds, when the unit is ms). */
export function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** A ratio like `2:1` as weights for a and b. */
export function parseRatio(text: string): [number, number] {
  const match = /^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$/.exec(text);
  if (!match) throw new Error(`ratio must look like 2:1 (votes for a : votes for b), got ${JSON.stringify(text)}`);
  const a = Number(match[1]);
  const b = Number(match[2]);
  if (a + b <= 0) throw new Error('ratio must give at least one option a weight above 0');
  return [a, b];
}

/**
 * The choice of the i-th vote (from 0) for a ratio: spread evenly and exactly, so any prefix of
 * n votes holds round(n * a / (a + b)) votes for a, give or take one.
 */
export function choiceAt(index: number, [a, b]: [number, number]): 'a' | 'b' {
  const share = a / (a + b);
  return Math.floor((index + 1) * share) > Math.floor(index * share) ? 'a' : 'b';
}

export type VoterPolicy = { kind: 'new' } | { kind: 'pool'; size: number };

/** `new` (a new voter per request) or `pool:<n>` (n voters that keep their cookies). */
export function parseVoters(text: string): VoterPolicy {
  if (text === 'new') return { kind: 'new' };
  const match = /^pool:(\d+)$/.exec(text);
  if (match && Number(match[1]) >= 1) return { kind: 'pool', size: Number(match[1]) };
  throw new Error(`voters must be "new" or "pool:<n>" with n >= 1, got ${JSON.stringify(text)}`);
}
