import { describe, expect, it } from 'vitest';
import type { Announcement } from '../src/capacity.js';
import { addToTimeline, TIMELINE_LENGTH, timelineEvent } from '../src/timeline.js';

const started = (at: number, instance: string): Announcement => ({
  kind: 'instanceStarted',
  at,
  data: { function: 'vote', instance, coldStartMs: 120, reason: 'call' },
});
const edges = (at: number, from: number, to: number): Announcement => ({
  kind: 'edgesScaled',
  at,
  data: { service: 'app_gateway', from, to, reason: '0.05 cores used by 2 edges, target 0.5 each' },
});

describe('the dashboard timeline', () => {
  it('says what each announcement means, at the time it happened', () => {
    expect(timelineEvent(started(5, 'vote-1'))).toEqual({ at: 5, function: 'vote', kind: 'started', instance: 'vote-1', detail: 'cold start in 120 ms' });
    expect(timelineEvent(edges(6, 2, 1))).toEqual({
      at: 6,
      function: 'app_gateway',
      kind: 'edges',
      detail: '2 → 1 edges: 0.05 cores used by 2 edges, target 0.5 each',
    });
    expect(timelineEvent({ kind: 'scaled', at: 7, data: { function: 'vote', from: 0, to: 2 } }).detail).toBe('0 → 2 instances');
    expect(timelineEvent({ kind: 'instanceStopped', at: 8, data: { function: 'vote', instance: 'vote-1', reason: 'idle' } })).toMatchObject({
      kind: 'stopped',
      detail: 'idle',
    });
  });

  // Break it catches: history put after what the edge heard itself (it happened before), or told
  // twice when an edge follows the same controller again.
  it('puts history in its place by time, each event once', () => {
    const heard = addToTimeline([], [timelineEvent(started(300, 'vote-3'))]);
    const history = [started(100, 'vote-1'), edges(200, 2, 1)].map(timelineEvent);
    const once = addToTimeline(heard, history);
    expect(once.map((e) => e.at)).toEqual([300, 200, 100]);
    expect(addToTimeline(once, history)).toEqual(once);
  });

  // Break it catches: a timeline that grows without end, or keeps the oldest instead of the newest.
  it(`keeps the newest ${TIMELINE_LENGTH} events`, () => {
    const many = Array.from({ length: TIMELINE_LENGTH + 10 }, (_, i) => timelineEvent(started(i, `vote-${i}`)));
    const kept = addToTimeline([], many);
    expect(kept).toHaveLength(TIMELINE_LENGTH);
    expect(kept[0]!.at).toBe(TIMELINE_LENGTH + 9);
    expect(kept.at(-1)!.at).toBe(10);
  });
});
