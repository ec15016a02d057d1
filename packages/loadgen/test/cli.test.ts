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
