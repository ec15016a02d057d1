import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '@platform/test-services';

const cli = join(import.meta.dirname, '../dist/cli.js');
const seed = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('seed command line', () => {
  it('refuses bad arguments with exit status 2 and says why', () => {
    for (const [args, message] of [
      [['--ratio', 'x'], /ratio must look like 2:1/],
      [['--voters', 'pool:0'], /voters must be/],
      [['--mode', 'xml'], /Allowed choices are form, json/],
      [['--votes', '0'], /integer >= 1/],
      [['--url', 'nope'], /not a URL/],
    ] as const) {
      const run = seed(...args);
      expect(run.status, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(message);
    }
  });

  it('counts unanswered votes as errors and exits 1 when nothing listens', async () => {
    const port = await freePort();
    const run = seed('--votes', '5', '--concurrency', '2', '--url', `http://127.0.0.1:${port}`, '--json');
    expect(run.status).toBe(1);
    const summary = JSON.parse(run.stdout) as { sent: number; accepted: number; failed: number; errors: Record<string, number> };
    expect(summary).toMatchObject({ sent: 5, accepted: 0, failed: 5, errors: { ECONNREFUSED: 5 } });
  });
});

describe('seed command line, arguments it does not know', () => {
  // Break it catches: a mistyped option or a stray argument refused without the usage, or taken
  // silently (3000 votes sent with the defaults).
  it('refuses them, naming them, with the usage, exit status 2', () => {
    for (const [args, message] of [
      [['--vote', '5'], "error: unknown option '--vote'\n(Did you mean --votes?)\n"],
      [['5'], 'error: too many arguments. Expected 0 arguments but got 1: 5.\n'],
    ] as const) {
      const run = seed(...args);
      expect(run.status, args.join(' ')).toBe(2);
      expect(run.stderr.startsWith(`${message}\nUsage: seed [options]\n`), run.stderr).toBe(true);
      expect(run.stdout).toBe('');
    }
  });

  // Break it catches: --help sending votes, or exiting as a failure.
  it('prints the usage on --help, exit status 0', () => {
    const run = seed('--help');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^Usage: seed \[options\]\n/);
  });
});
