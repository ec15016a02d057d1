#!/usr/bin/env node
// Entry point of `npm start`, `npm test` and of every command the README shows (`npm run images`,
// `seed`, `bench`, `fn`, `stack:deploy`): works with nothing but Node and npm installed, from a
// clean clone, in any order. It brings the pinned pnpm, installs from the lock file, builds, then
// runs the command. Each step is idempotent and quick when already done.
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const command = process.argv[2];
const pinned = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager.split('@')[1];
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', TURBO_NO_UPDATE_NOTIFIER: '1' };

// Progress goes to stderr, so that a command's own output on stdout (fn --json) stays clean.
function step(title) {
  process.stderr.write(`\n▶ ${title}\n`);
}

function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { cwd: root, stdio: ['inherit', process.stderr, 'inherit'], env, ...options });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    process.stderr.write(`✖ ${cmd} ${args.join(' ')} exited with ${result.status ?? result.signal}\n`);
    process.exit(result.status ?? 1);
  }
}

/**
 * Runs a step that is quick when there is nothing to do: quiet then, so that a command's own
 * output stays clean. When it is first needed (`first`, e.g. no node_modules yet) its title and
 * output are shown from the start; otherwise they are shown once it has taken 3 s (a changed
 * lock file, changed sources). On failure its output is shown, and the exit status passed on.
 */
async function quietUnlessSlow(title, first, cmd, args) {
  const child = spawn(cmd, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env });
  let held = '';
  let shown = false;
  const show = () => {
    if (shown) return;
    shown = true;
    step(title);
    process.stderr.write(held);
  };
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (data) => (shown ? process.stderr.write(data) : (held += data)));
  }
  if (first) show();
  const slow = setTimeout(show, 3_000);
  const [code, signal] = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (...end) => resolve(end));
  });
  clearTimeout(slow);
  if (code !== 0) {
    show();
    process.stderr.write(`✖ ${title}: ${cmd} ${args.join(' ')} exited with ${code ?? signal}\n`);
    process.exit(code ?? 1);
  }
}

/** Installs from the lock file; says so, with pnpm's progress, on a first run or when it takes long. */
function install(pnpmBin) {
  const first = !existsSync(join(root, 'node_modules', '.modules.yaml'));
  const title = first ? 'installing dependencies (first run: a minute or two)' : 'installing dependencies (the lock file changed)';
  return quietUnlessSlow(title, first, pnpmBin, ['install', '--frozen-lockfile', '--reporter=append-only']);
}

/** Builds the workspace (turbo: only what changed); says so on a first build or when it takes long. */
function build(pnpmBin) {
  const first = !existsSync(join(root, 'apps', 'gateway', 'dist', 'main.js'));
  return quietUnlessSlow(first ? 'building (first run: a minute or two)' : 'building', first, pnpmBin, ['run', 'build', '--output-logs=errors-only']);
}

function versionOf(bin) {
  const result = spawnSync(bin, ['--version'], { encoding: 'utf8', env });
  return result.status === 0 ? result.stdout.trim() : null;
}

/** The pinned pnpm, from PATH when it matches, otherwise installed into .tools/ with npm. */
function ensurePnpm() {
  if (versionOf('pnpm') === pinned) return 'pnpm';
  const local = join(root, '.tools', 'node_modules', '.bin', 'pnpm');
  if (existsSync(local) && versionOf(local) === pinned) return local;
  step(`installing pnpm ${pinned} into .tools/`);
  run('npm', ['install', '--no-save', '--no-package-lock', '--prefix', join(root, '.tools'), `pnpm@${pinned}`]);
  return local;
}

/**
 * `pnpm audit --audit-level high`: fails on any high or critical advisory. Where the registry's
 * advisory service cannot be reached or refuses (some mirrors answer 405), the audit is reported
 * loudly as NOT done, and the run goes on: the other tests say nothing about advisories either way.
 */
function audit(pnpmBin) {
  const result = spawnSync(pnpmBin, ['audit', '--audit-level', 'high'], { cwd: root, env, encoding: 'utf8' });
  if (result.error) throw result.error;
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  process.stdout.write(output);
  if (result.status === 0) return;
  const unreachable = /ERR_PNPM_AUDIT_BAD_RESPONSE|ERR_PNPM_AUDIT_ENDPOINT|ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|ECONNRESET|responded with \d+/.test(
    output,
  );
  if (unreachable) {
    process.stderr.write(
      [
        "⚠ pnpm audit could not be done: the registry's advisory service did not answer (see above).",
        '  The dependencies were NOT checked for known vulnerabilities in this run.',
        '  Run `pnpm audit --audit-level high` where the registry (or its advisory endpoint',
        '  /-/npm/v1/security/advisories/bulk) can be reached.',
        '',
      ].join('\n'),
    );
    return;
  } else {
    process.stderr.write('✖ pnpm audit found high or critical advisories (above): update or replace those dependencies.\n');
  }
  process.exit(1);
}

/** The commands besides start and test: what each runs once the workspace is installed and built. */
const tools = {
  images: ['node', 'infra/scripts/build-images.mjs'],
  'stack:deploy': ['bash', 'infra/scripts/stack.sh', 'deploy'],
  seed: ['node', 'packages/loadgen/dist/cli.js'],
  bench: ['node', 'bench/dist/cli.js'],
  fn: ['node', 'packages/cli/dist/main.js'],
  compose: ['bash', 'infra/scripts/compose.sh'],
};

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  process.stderr.write(`✖ Node ${process.versions.node} is too old: this project needs Node 20.19 or newer.\n`);
  process.exit(1);
}
if (command !== 'start' && command !== 'test' && !(command in tools)) {
  process.stderr.write(`usage: bootstrap.mjs start|test|${Object.keys(tools).join('|')} [args...]\n`);
  process.exit(2);
}

/** Hands the terminal to a child; Ctrl-C reaches it directly and it stops what it started. */
function handOver(cmd, args) {
  const child = spawn(cmd, args, { cwd: root, stdio: 'inherit', env });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  // Ended by a signal: Ctrl-C's and a stop's are a normal end; any other (a kill, the OOM killer) is not.
  child.on('exit', (code, signal) => process.exit(code ?? (signal === 'SIGINT' || signal === 'SIGTERM' ? 0 : 128 + (constants.signals[signal] ?? 0))));
}

if (command in tools) {
  const [cmd, ...args] = tools[command];
  // fn is typed again and again in a workshop: once built, it starts at once.
  if (!(command === 'fn' && existsSync(join(root, args[0])))) {
    // Progress on stderr, only when there is something to do: a command's own output (fn --json,
    // seed's summary) stays clean.
    const pnpm = ensurePnpm();
    env.PATH = `${dirname(pnpm === 'pnpm' ? '.' : pnpm)}:${env.PATH}`;
    await install(pnpm);
    await build(pnpm);
  }
  handOver(cmd, [...args, ...process.argv.slice(3)]);
} else {
  const pnpm = ensurePnpm();
  env.PATH = `${dirname(pnpm === 'pnpm' ? '.' : pnpm)}:${env.PATH}`;
  await install(pnpm);
  await build(pnpm);
  if (command === 'start') {
    step('starting');
    handOver(process.execPath, [join(root, 'apps/gateway/dist/main.js')]);
  } else {
    step('preparing test services (Redis server, Chromium)');
    run('bash', [join(root, 'infra/scripts/ensure-test-deps.sh')]);
    step('type-checking');
    run(pnpm, ['run', 'typecheck', '--output-logs=errors-only']);
    step('lint and format check (Biome; `npm run format` fixes the format)');
    run(pnpm, ['run', 'lint', '--output-logs=errors-only']);
    step('unit and integration tests');
    run(pnpm, ['run', 'test:unit']);
    step('browser tests');
    run(pnpm, ['run', 'test:e2e']);
    step('dependency audit (pnpm audit --audit-level high)');
    audit(pnpm);
    process.stdout.write('\n✔ all tests passed\n');
  }
}
