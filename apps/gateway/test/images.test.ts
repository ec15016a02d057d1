import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { expect, it } from 'vitest';
import { TEST_INVOKE_TOKEN } from './harness.js';
import { report } from './faults.js';

// Secrets are given to a running container (Docker secrets, environment), never built into an
// image: the app's images (built as `pnpm images` builds them) hold no secret file, no secret
// variable, and none of the secret values this machine has (the local ones `npm start` made).
const root = join(import.meta.dirname, '..', '..', '..');
const images = ['voting/fn-vote:latest', 'voting/fn-record-vote:latest', 'voting/fn-results:latest', 'voting/gateway:latest'];

function knownSecretValues(): string[] {
  const values = ['test-cookie-secret', TEST_INVOKE_TOKEN];
  const dir = join(root, '.data', 'secrets');
  if (existsSync(dir)) for (const name of readdirSync(dir)) values.push(readFileSync(join(dir, name), 'utf8').trim());
  return values.filter((v) => v.length >= 8);
}

it('builds images without secrets in their files, variables or history', { timeout: 120_000 }, async () => {
  // A local secret as `npm start` keeps them, made just before the build: it must not get in.
  const decoyDir = join(root, '.data', 'secrets');
  const decoy = join(decoyDir, `image-check-${randomBytes(4).toString('hex')}`);
  const madeDataDir = !existsSync(join(root, '.data'));
  mkdirSync(decoyDir, { recursive: true, mode: 0o700 });
  writeFileSync(decoy, randomBytes(24).toString('base64url'), { mode: 0o600 });
  const values = knownSecretValues();
  try {
    execFileSync(process.execPath, [join(root, 'infra/scripts/build-images.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
  } finally {
    rmSync(madeDataDir ? join(root, '.data') : decoy, { recursive: true, force: true });
  }
  const docker = new Docker();
  const seen: Record<string, { files: number; env: string[] }> = {};
  for (const image of images) {
    const info = await docker.getImage(image).inspect();
    const env = (info.Config.Env ?? []).map((e) => e.split('=')[0]!);
    expect(
      env.filter((name) => /SECRET|TOKEN|PASSWORD|DATABASE_URL|KEY/i.test(name)),
      image,
    ).toEqual([]);
    const history = JSON.stringify(await docker.getImage(image).history());
    const container = await docker.createContainer({ Image: image });
    let tar: Buffer;
    try {
      tar = execFileSync('docker', ['export', container.id], { maxBuffer: 512 * 1024 * 1024 });
    } finally {
      await container.remove({ force: true });
    }
    const files = execFileSync('tar', ['-t'], { input: tar, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' })
      .split('\n')
      .filter(Boolean);
    const secretFiles = files.filter((f) => /(^|\/)(\.env|secrets\/|cookie-secret|gateway-admin-token|gateway-invoke-token|database-url|\.data\/)/.test(f));
    expect(secretFiles, image).toEqual([]);
    for (const value of values) {
      expect(tar.includes(value), `${image} holds a secret value`).toBe(false);
      expect(history.includes(value), `${image}'s history holds a secret value`).toBe(false);
    }
    seen[image] = { files: files.length, env };
  }
  report([
    'images checked for secrets:',
    ['secret values looked for', values.length],
    ...Object.entries(seen).map(([image, s]): [string, unknown] => [image, s]),
  ]);
});

// Break it catches: an unknown option or a mistyped function name building nothing (or
// everything) without a word, or refused without the usage.
it('refuses unknown arguments and function names with the usage, exit status 2; --help prints it, exit 0', () => {
  const images = (...args: string[]) =>
    spawnSync(process.execPath, [join(root, 'infra/scripts/build-images.mjs'), ...args], { encoding: 'utf8', timeout: 20_000 });
  const help = images('--help');
  expect(help.status).toBe(0);
  expect(help.stdout).toMatch(/^usage: npm run images -- \[--functions-dir DIR\] \[--no-gateway\] \[FUNCTION \.\.\.\]\n/);
  for (const [args, message] of [
    [['--gatway'], "✖ unknown option '--gatway'"],
    [['vots'], `✖ no function named vots in ${join(root, 'functions')}: the functions there are record-vote, results, vote`],
    [['--functions-dir'], "✖ option '--functions-dir <value>' argument missing"],
  ] as const) {
    const run = images(...args);
    expect(run.status, args.join(' ')).toBe(2);
    expect(run.stderr).toBe(`${message}\n${help.stdout}`);
  }
});
