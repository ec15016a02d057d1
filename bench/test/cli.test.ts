import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const cli = join(import.meta.dirname, '../dist/cli.js');
const bench = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 20_000 });

describe('bench command line', () => {
  // Break it catches: a mistyped option or a stray argument refused without the usage (or taken
  // silently, starting a run of minutes with the defaults).
  it('refuses an unknown option or argument, naming it, with the usage, exit status 2', () => {
    for (const [args, message] of [
      [['--quik'], "error: unknown option '--quik'\n(Did you mean --quick?)\n"],
      [['quick'], 'error: too many arguments. Expected 0 arguments but got 1: quick.\n'],
    ] as const) {
      const run = bench(...args);
      expect(run.status, args.join(' ')).toBe(2);
      expect(run.stderr.startsWith(`${message}\nUsage: bench [options]\n`), run.stderr).toBe(true);
      expect(run.stdout).toBe('');
    }
  });

  // Break it catches: --help starting a run, or exiting as a failure.
  it('prints the usage on --help, exit status 0', () => {
    const run = bench('--help');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^Usage: bench \[options\]\n/);
    expect(run.stdout).toContain('--quick');
  });
});
