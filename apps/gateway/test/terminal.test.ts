import { describe, expect, it } from 'vitest';
import { functionLogFormat, isPretty } from '../src/terminal.js';

describe('log lines for a person on a terminal', () => {
  // Break it catches: auto not following the terminal (JSON on a terminal, or pretty into a pipe
  // a log collector reads), or an explicit LOG_FORMAT overruled.
  it('are pretty on a terminal, JSON otherwise, as LOG_FORMAT says when it is set', () => {
    expect(isPretty('auto', true)).toBe(true);
    expect(isPretty('auto', false)).toBe(false);
    expect(isPretty('json', true)).toBe(false);
    expect(isPretty('pretty', false)).toBe(true);
  });

  // Break it catches: a function instance's JSON record echoed as it is, or its fields dropped.
  it("rewrite a function instance's JSON record as one readable line, and leave other text as it is", () => {
    const format = functionLogFormat('pretty')!;
    const line = format(JSON.stringify({ level: 30, time: Date.UTC(2026, 0, 1), name: 'vote', instance: 'vote-1', pid: 7, hostname: 'h', msg: 'ready' }));
    expect(line).toMatch(/^\[\d\d:\d\d:\d\d\] INFO \(vote\): ready \{"instance":"vote-1"\}\n$/);
    expect(format('Traceback (most recent call last):')).toBe('Traceback (most recent call last):\n');
    expect(functionLogFormat('json')).toBeUndefined();
  });
});
