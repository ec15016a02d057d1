import { describe, expect, it } from 'vitest';
import { bucketValue, latencyBucket, latencyHistogram, mergeFigures, type EdgeFigures, type OwnFigures } from '../src/tier-stats.js';
import { messages } from '../src/tier-reports.js';

const NOW = 1_000_000;

function own(samples: number[], figures: Partial<EdgeFigures> = {}): OwnFigures {
  return {
    inFlight: 0,
    waiting: 0,
    invocationCount: samples.length,
    recentCalls: samples.length,
    latency: latencyHistogram(samples),
    errors: [],
    samples,
    ...figures,
  };
}

/** Another edge's report, received `ageMs` ago. */
function other(samples: number[], figures: Partial<EdgeFigures> = {}, ageMs = 500) {
  const { samples: _samples, ...edge } = own(samples, figures);
  return { receivedAt: NOW - ageMs, figures: edge };
}

const repeat = (ms: number, times: number) => Array.from({ length: times }, () => ms);

describe('mergeFigures', () => {
  // Break it catches: percentiles averaged across edges instead of taken from their latencies together.
  it('takes latency percentiles from every edge’s latencies put together', () => {
    // This edge: 90 fast calls; another: 10 slow ones. Of the 100, the 95th is slow, the 50th fast.
    const merged = mergeFigures(own(repeat(10, 90)), [other(repeat(1_000, 10))], NOW);
    expect(merged.latencyMs!.p50).toBe(10);
    // Each edge's percentiles averaged would give (10 + 1000) / 2 for both.
    expect(merged.latencyMs!.p95).toBeGreaterThan(1_000 * 0.978);
    expect(merged.latencyMs!.p95).toBeLessThan(1_000 * 1.022);
    expect(merged.latencyMs!.p99).toBeCloseTo(merged.latencyMs!.p95);
  });

  // Break it catches: buckets coarser than the 2.2% the README promises.
  it('keeps percentiles within 2.2% whatever the latency, and exact below 16 ms', () => {
    for (const ms of [0, 3, 15]) expect(bucketValue(latencyBucket(ms))).toBe(ms);
    for (const ms of [16, 17, 99, 123, 1_000, 4_567, 899_999]) {
      expect(Math.abs(bucketValue(latencyBucket(ms)) - ms) / ms).toBeLessThan(0.022);
    }
    const spread = Array.from({ length: 1_000 }, (_, i) => 1 + i * 3);
    const merged = mergeFigures(own(spread.slice(0, 500)), [other(spread.slice(500))], NOW);
    expect(Math.abs(merged.latencyMs!.p50 - 1_498) / 1_498).toBeLessThan(0.022);
    expect(Math.abs(merged.latencyMs!.p99 - 2_968) / 2_968).toBeLessThan(0.022);
  });

  // Break it catches: a lone edge's percentiles no longer exact (as before edges shared their figures).
  it('gives this edge’s exact percentiles while no other edge timed any call', () => {
    const alone = mergeFigures(own([123, 456, 789]), [], NOW);
    expect(alone.latencyMs).toEqual({ p50: 456, p95: 789, p99: 789 });
    const idleOther = mergeFigures(own([123, 456, 789]), [other([], { inFlight: 1 })], NOW);
    expect(idleOther.latencyMs).toEqual({ p50: 456, p95: 789, p99: 789 });
    expect(mergeFigures(own([]), [], NOW).latencyMs).toBeNull();
  });

  // Break it catches: figures of one edge only, or the counts averaged rather than added.
  it('adds up in flight, waiting, invocations and calls per second over the edges', () => {
    const merged = mergeFigures(
      own(repeat(5, 20), { inFlight: 2, waiting: 1, invocationCount: 100 }),
      [other(repeat(5, 30), { inFlight: 3, waiting: 4, invocationCount: 50 }), other(repeat(5, 1), { inFlight: 1, invocationCount: 7 })],
      NOW,
    );
    expect(merged).toMatchObject({ inFlight: 6, waiting: 5, invocationCount: 157, callsPerSecond: 5.1 });
  });

  // Break it catches: a dead edge's last report counted for ever.
  it('leaves out the reports older than 3 s: an edge gone stops counting', () => {
    const merged = mergeFigures(
      own([10], { inFlight: 1, invocationCount: 1 }),
      [other(repeat(1_000, 50), { inFlight: 7, invocationCount: 50 }, 3_001), other([12], { inFlight: 1, invocationCount: 1 }, 2_999)],
      NOW,
    );
    expect(merged).toMatchObject({ inFlight: 2, invocationCount: 2, callsPerSecond: 0.2, latencyMs: { p50: 10, p95: 12, p99: 12 } });
  });

  // Break it catches: errors of one edge only, or not newest first.
  it('lists the newest errors of all edges first, five at most', () => {
    const at = (t: number, status = 500) => ({ at: t, status, message: `at ${t}` });
    const merged = mergeFigures(own([], { errors: [at(9), at(5), at(1)] }), [other([], { errors: [at(8, 502), at(7), at(6), at(2)] })], NOW);
    expect(merged.lastErrors).toEqual([at(9), at(8, 502), at(7), at(6), at(5)]);
  });
});

describe('messages', () => {
  // Break it catches: one report for every function however big (PostgreSQL's NOTIFY refuses 8000 bytes or more).
  it('splits an edge’s report under 7000 bytes a message, every function in one of them', () => {
    const errors = Array.from({ length: 5 }, (_, i) => ({ at: i, status: 500, message: '\u0001'.repeat(200) }));
    const latency = latencyHistogram(Array.from({ length: 2_000 }, (_, i) => i * 400));
    const functions = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`fn-${i}`, { ...own([]), latency, errors }]));
    const sent = messages('edge-1', functions);
    expect(sent.length).toBeGreaterThan(1);
    for (const message of sent) expect(Buffer.byteLength(message)).toBeLessThanOrEqual(7_000);
    const received = sent.map((m) => JSON.parse(m) as { edge: string; functions: Record<string, EdgeFigures> });
    expect(received.every((r) => r.edge === 'edge-1')).toBe(true);
    expect(received.flatMap((r) => Object.keys(r.functions)).sort()).toEqual(Object.keys(functions).sort());
  });
});
