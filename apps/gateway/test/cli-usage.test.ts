import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@platform/test-services';

const cliRelease = (JSON.parse(await readFile(join(repoRoot, 'packages/cli/package.json'), 'utf8')) as { version: string }).version;

/**
 * PATH without the repository's node_modules/.bin folders the test runner added, which hold an fn of
 * their own; the pnpm the bootstrap may have put in .tools/ stays.
 */
const PATH = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((dir) => !(dir.startsWith(repoRoot) && dir.includes(`${sep}node_modules${sep}`) && !dir.startsWith(join(repoRoot, '.tools'))))
  .join(delimiter);

/** Runs a command with no gateway to reach: usage errors and help are answered before any call. */
const run = (cmd: string, args: string[], cwd = repoRoot, env: Record<string, string> = {}) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      cmd,
      args,
      { cwd, timeout: 120_000, env: { PATH, HOME: process.env.HOME ?? tmpdir(), GATEWAY_URL: 'http://127.0.0.1:9', ...env } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
const fn = (...args: string[]) => run(process.execPath, [join(repoRoot, 'packages/cli/bin/fn.mjs'), ...args]);

const usage = 'Usage: fn [options] [command]\n';
const statusHelp = [
  'Usage: fn status [options]',
  '',
  'the tier and every function in one screen',
  '',
  'Options:',
  '  -h, --help  display help for command',
  '',
].join('\n');

describe("fn's own usage errors and help", () => {
  // Break it catches: commander's own "error: ..." wording kept, or the usage not shown after the error.
  it('names an unknown command or option, shows the usage and exits 2, printing nothing on stdout', async () => {
    const command = await fn('frobnicate');
    expect(command.code).toBe(2);
    expect(command.stdout).toBe('');
    expect(command.stderr.startsWith(`fn: unknown command 'frobnicate'\n\n${usage}`)).toBe(true);
    expect(command.stderr).toMatch(/^Commands:\n {2}list\|ls /m);

    const typo = await fn('stauts');
    expect(typo.code).toBe(2);
    expect(typo.stderr.startsWith(`fn: unknown command 'stauts'\n(Did you mean status?)\n\n${usage}`)).toBe(true);

    const option = await fn('--bogus', 'list');
    expect(option.code).toBe(2);
    expect(option.stderr.startsWith(`fn: unknown option '--bogus'\n\n${usage}`)).toBe(true);

    expect(await fn('status', '--bogus')).toEqual({ code: 2, stdout: '', stderr: `fn: unknown option '--bogus'\n\n${statusHelp}` });
    expect(await fn('version', 'extra')).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/^fn: too many arguments for 'version'\. Expected 0 arguments but got 1: extra\.\n\nUsage: fn version \[options\]\n/),
    });
  });

  // Break it catches: a command left out of the help, or help answered as an error.
  it('answers --help, <command> --help and --version on stdout, exit 0', async () => {
    const help = await fn('--help');
    expect(help.code).toBe(0);
    expect(help.stdout.startsWith(`${usage}\nWrite, deploy, list, invoke and scale the gateway's functions\n`)).toBe(true);
    for (const command of ['list|ls', 'status', 'version', 'invoke', 'scale', 'calls', 'logs', 'new', 'deploy', 'rm'])
      expect(help.stdout).toMatch(new RegExp(`^ {2}${command.replace('|', '\\|')} `, 'm'));
    expect(await fn('status', '--help')).toEqual({ code: 0, stdout: statusHelp, stderr: '' });
    expect(await fn('--version')).toEqual({ code: 0, stdout: `${cliRelease}\n`, stderr: '' });
  });
});

describe('fn on the path of the repository', () => {
  // npm never asks a registry here: a bin it would have to fetch fails instead (ENOTCACHED), so
  // a command that is not this CLI cannot pass, and the test sends nothing off this machine.
  const offline = (dir: string) => ({ npm_config_offline: 'true', npm_config_update_notifier: 'false', npm_config_cache: join(dir, 'npm-cache') });
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'fn-path-'));
  });
  afterAll(async () => rm(scratch, { recursive: true, force: true }));

  // Break it catches: the root script "fn" running something else, or no node_modules/.bin/fn (the
  // root's dependency on @platform/cli, or that package's bin, removed).
  it('runs this CLI as `npx fn` and `pnpm fn` from the repository root', async () => {
    const npx = await run('npx', ['--no-install', 'fn', '--help'], repoRoot, offline(scratch));
    expect(npx.stderr).toBe('');
    expect(npx.code).toBe(0);
    expect(npx.stdout.startsWith(usage)).toBe(true);
    const pnpm = await run('pnpm', ['--silent', 'fn', '--help']);
    expect(pnpm).toMatchObject({ code: 0, stdout: npx.stdout });
    // node_modules/.bin/fn, the workspace bin, as `pnpm exec fn` runs it.
    expect(await run('pnpm', ['exec', 'fn', '--help'])).toMatchObject({ code: 0, stdout: npx.stdout });
  });

  // Break it catches: the same bin removed; in a clone before its first install there is no
  // node_modules/.bin/fn to fall back on, and npx would go and fetch an unrelated package named fn.
  it('runs it as `npx fn` in a clone before any install: the root bin, not a package of that name', async () => {
    const clone = join(scratch, 'clone');
    await mkdir(clone);
    await copyFile(join(repoRoot, 'package.json'), join(clone, 'package.json'));
    // The CLI as built here; no node_modules in the clone's root.
    await symlink(join(repoRoot, 'packages'), join(clone, 'packages'));
    const npx = await run('npx', ['--no-install', 'fn', 'status', '--help'], clone, offline(scratch));
    expect(npx).toMatchObject({ code: 0, stdout: statusHelp });
  });
});
