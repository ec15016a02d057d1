import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
/** infra/scripts/stack.sh as `npm run stack:deploy` / `stack:rm` run it. */
const stack = (...args: string[]) => spawnSync('bash', [join(root, 'infra/scripts/stack.sh'), ...args], { encoding: 'utf8', timeout: 20_000 });

describe('stack.sh arguments', () => {
  // Break it catches: a mistyped command or option refused without the usage, or taken silently
  // (a deploy started, or a stack named after the mistyped word), and --help not exiting 0.
  it('refuses unknown commands, options and extra arguments with the usage, exit status 2, before touching Docker', () => {
    const help = stack('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: npm run stack:deploy -- \[NAME\]\n {7}npm run stack:rm -- \[NAME\] \[--volumes\]\n/);
    expect(stack('deploy', '--help').stdout).toBe(help.stdout);
    for (const [args, message] of [
      [[], '✖ no command given: deploy or rm'],
      [['deploi'], '✖ unknown command deploi'],
      [['deploy', '--no-build'], '✖ unknown option --no-build'],
      [['rm', '--volume'], '✖ unknown option --volume'],
      [['deploy', '--volumes'], '✖ --volumes is an option of rm'],
      [['rm', 'one', 'two'], '✖ unexpected argument two (the stack is already named one)'],
    ] as const) {
      const run = stack(...args);
      expect(run.status, args.join(' ')).toBe(2);
      expect(run.stderr).toBe(`${message}\n${help.stdout}`);
      expect(run.stdout).toBe('');
    }
  });
});
