import { describe, expect, it } from 'vitest';
import { choiceAt, LatencyRecorder, parseRatio, parseVoters, summarize } from '../src/stats.js';
import { formatSummary, voterCookie, type SeedSummary } from '../src/seed.js';

describe('LatencyRecorder', () => {
  it('gives exact percentiles to 0.1 % over a known distribution', () => {
    const recorder = new LatencyRecorder();
    for (let i = 1; i <= 10_000; i++) recorder.record(i / 100); // 0.01 ms .. 100 ms
    const s = recorder.summary();
    expect(s.count).toBe(10_000);
    expect(s.min).toBeCloseTo(0.01, 3);
    expect(s.p50).toBeCloseTo(50, 0);
    expect(s.p95).toBeCloseTo(95, 0);
    expect(s.p99).toBeCloseTo(99, 0);
    expect(s.max).toBeCloseTo(100, 0);
    expect(s.mean).toBeCloseTo(50.005, 1);
    for (const p of [s.p50, s.p95, s.p99]) expect(p).toBeLessThanOrEqual(s.max);
  });

  it('never answers a percentile above the largest value', () => {
    const s = summarize([12.978, 5.9, 6.1]);
    expect(s.p99).toBeLessThanOrEqual(s.max);
    expect(s.max).toBeCloseTo(12.978, 1);
  });

  it('is all zeros when empty, and refuses negative or non-finite values', () => {
    expect(new LatencyRecorder().summary()).toEqual({ count: 0, min: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 });
    expect(() => new LatencyRecorder().record(-1)).toThrow(RangeError);
    expect(() => new LatencyRecorder().record(Number.NaN)).toThrow(RangeError);
  });

  it('keeps sub-millisecond values to the microsecond', () => {
    expect(summarize([0.25, 0.25, 0.25]).p50).toBeCloseTo(0.25, 3);
  });
});

describe('ratio', () => {
  it('parses a:b', () => {
    expect(parseRatio('2:1')).toEqual([2, 1]);
    expect(parseRatio(' 1.5 : 0 ')).toEqual([1.5, 0]);
    for (const bad of ['2', '2:', 'a:b', '0:0', '-1:2']) expect(() => parseRatio(bad)).toThrow(/ratio/);
  });

  it('spreads choices exactly: every prefix holds its share of a, give or take one', () => {
    const ratio: [number, number] = [2, 1];
    let a = 0;
    for (let i = 0; i < 3_000; i++) {
      if (choiceAt(i, ratio) === 'a') a++;
      expect(Math.abs(a - ((i + 1) * 2) / 3)).toBeLessThanOrEqual(1);
    }
    expect(a).toBe(2_000);
    expect(choiceAt(5, [1, 0])).toBe('a');
    expect(choiceAt(5, [0, 1])).toBe('b');
  });
});

describe('voters', () => {
  it('parses new and pool:<n>', () => {
    expect(parseVoters('new')).toEqual({ kind: 'new' });
    expect(parseVoters('pool:25')).toEqual({ kind: 'pool', size: 25 });
    for (const bad of ['pool:0', 'pool:', 'pool:x', 'old']) expect(() => parseVoters(bad)).toThrow(/voters/);
  });

  it('finds the voter_id cookie among Set-Cookie headers', () => {
    expect(voterCookie(['other=1; Path=/', 'voter_id=abc.def; Path=/; HttpOnly'])).toBe('voter_id=abc.def');
    expect(voterCookie(undefined)).toBeUndefined();
    expect(voterCookie(['other=1'])).toBeUndefined();
  });
});

describe('formatSummary', () => {
  it('prints sent, accepted, rejected by status, errors, percentiles and the rate', () => {
    const summary: SeedSummary = {
      url: 'http://127.0.0.1:8080',
      mode: 'form',
      voters: 'new',
      concurrency: 8,
      ratio: '2:1',
      sent: 10,
      accepted: 7,
      rejected: { '429': 2 },
      errors: { ECONNRESET: 1 },
      failed: 3,
      votes: { a: 5, b: 2 },
      distinctVoters: 7,
      durationMs: 1_000,
      votesPerSecond: 7,
      latencyMs: { count: 10, min: 1, mean: 2, p50: 2, p95: 3, p99: 4, max: 5 },
      startedAt: 0,
      endedAt: 1_000,
    };
    const text = formatSummary(summary);
    expect(text).toMatch(/^sent\s+10$/m);
    expect(text).toMatch(/^accepted\s+7 \(a: 5, b: 2; 7 distinct voters\)$/m);
    expect(text).toMatch(/^rejected\s+429: 2$/m);
    expect(text).toMatch(/^errors\s+ECONNRESET: 1$/m);
    expect(text).toMatch(/^latency ms\s+p50 2\s+p95 3\s+p99 4\s+max 5$/m);
    expect(text).toMatch(/^throughput\s+7 votes\/s/m);
  });
});
