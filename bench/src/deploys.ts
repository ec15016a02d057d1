// Deploys while the app runs, as a workshop does them: `fn new` from the templates, then `fn
// deploy` (which builds the image for the docker runtime), the first call (a cold start), more
// cold starts after scaling to zero, and `fn rm`; for each runtime and each language.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { round, summarize } from '@voting/loadgen';
import { repoRoot, startApp, type RunningApp } from './app.js';
import { dockerState } from './docker.js';
import type { ScenarioResult } from './types.js';

const ADMIN_TOKEN = 'bench-admin-token';
const LANGUAGES = ['node', 'python'] as const;
const cli = join(repoRoot, 'packages/cli/dist/main.js');

function fn(args: string[], what: string): void {
  const ran = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  if (ran.status !== 0) throw new Error(`${what} exited ${ran.status}: ${(ran.stderr || ran.stdout).trim().slice(-400)}`);
}

async function greet(app: RunningApp, name: string): Promise<number> {
  const t = performance.now();
  const response = await fetch(`${app.url}/function/${name}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"bench"}' });
  await response.text();
  if (response.status !== 200) throw new Error(`${name} answered ${response.status}`);
  return performance.now() - t;
}

async function scaleToZero(app: RunningApp, name: string): Promise<void> {
  const response = await fetch(`${app.url}/system/scale-function/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({ replicas: 0 }),
  });
  if (!response.ok) throw new Error(`scaling ${name} to zero answered ${response.status}`);
}

/** A functions folder holding the app's functions, linked: the workshop's are written into it while the app runs. */
function workshopFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bench-deploys-'));
  mkdirSync(join(dir, 'functions'));
  for (const name of ['vote', 'record-vote', 'results']) symlinkSync(join(repoRoot, 'functions', name), join(dir, 'functions', name));
  return dir;
}

/** `fn new` from a template, as a workshop writes a function. */
function writeFunction(functions: string, lang: (typeof LANGUAGES)[number]): void {
  fn(['new', `hello-${lang}`, '--lang', lang, '--dir', functions, '--no-install'], `fn new hello-${lang}`);
  // What fn new's pnpm install does inside the workspace: the contract linked into the function.
  if (lang === 'node') {
    mkdirSync(join(functions, 'hello-node', 'node_modules', '@platform'), { recursive: true });
    symlinkSync(join(repoRoot, 'packages/function-contract'), join(functions, 'hello-node', 'node_modules', '@platform', 'function-contract'));
  }
}

export async function deployTimes({ samples = 5, log = () => {} }: { samples?: number; log?: (line: string) => void } = {}): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  const docker = dockerState();
  for (const runtime of ['process', 'docker'] as const) {
    const id = `deploy-${runtime}`;
    const title = `Live deploy, ${runtime} runtime: fn deploy, first call, cold start, fn rm (Node and Python templates)`;
    if (runtime === 'docker' && !docker.up) {
      results.push({ id, title, status: 'not run', reason: docker.why, metrics: [] });
      continue;
    }
    const dir = workshopFolder();
    log(`starting the app with RUNTIME=${runtime} and the workshop's functions folder...`);
    const app = await startApp({ env: { RUNTIME: runtime, FUNCTIONS_DIR: join(dir, 'functions'), GATEWAY_ADMIN_TOKEN: ADMIN_TOKEN } });
    const metrics: ScenarioResult['metrics'] = [];
    const details: Record<string, unknown> = {};
    try {
      for (const lang of LANGUAGES) {
        const name = `hello-${lang}`;
        const as = ['--gateway', app.url, '--token', ADMIN_TOKEN];
        writeFunction(join(dir, 'functions'), lang);
        log(`${runtime}, ${lang}: fn deploy...`);
        let t = performance.now();
        fn([...as, 'deploy', join(dir, 'functions', name)], `fn deploy ${name}`);
        const deployMs = performance.now() - t;
        const firstCallMs = await greet(app, name);
        const cold: number[] = [];
        for (let i = 0; i < samples; i++) {
          await scaleToZero(app, name);
          cold.push(await greet(app, name));
        }
        const warm: number[] = [];
        for (let i = 0; i < 50; i++) warm.push(await greet(app, name));
        t = performance.now();
        fn([...as, 'rm', name], `fn rm ${name}`);
        const removeMs = performance.now() - t;
        const c = summarize(cold);
        metrics.push(
          { name: `${lang}: fn deploy${runtime === 'docker' ? ' (image build included)' : ''}`, value: round(deployMs, 0), unit: 'ms' },
          { name: `${lang}: first call after the deploy`, value: round(firstCallMs, 1), unit: 'ms' },
          { name: `${lang}: cold start (first call at zero instances), median`, value: c.p50, unit: 'ms' },
          { name: `${lang}: warm call, median`, value: summarize(warm).p50, unit: 'ms' },
          { name: `${lang}: fn rm`, value: round(removeMs, 0), unit: 'ms' },
        );
        details[lang] = { deployMs: round(deployMs, 1), firstCallMs: round(firstCallMs, 1), coldStartMs: c, removeMs: round(removeMs, 1), samples };
      }
      results.push({ id, title, status: 'ok', metrics, details });
    } finally {
      await app.stop();
      if (runtime === 'docker') for (const lang of LANGUAGES) spawnSync('docker', ['image', 'rm', '-f', `voting/fn-hello-${lang}:latest`]);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return results;
}
