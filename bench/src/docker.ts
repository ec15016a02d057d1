// Docker runtime scenarios: a second app with RUNTIME=docker beside the embedded one, its cold
// start against a bare `docker run --rm -i` of the same image, and its warm call overhead
// against the warm container called directly. Not run (with the reason) when no engine answers.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { INVOKE_TOKEN_ENV, INVOKE_TOKEN_HEADER } from '@platform/function-contract';
import { round, summarize } from '@voting/loadgen';
import { waitUntil } from '@platform/test-services';
import { repoRoot, startApp, type RunningApp } from './app.js';
import { call, keepAlive } from './http.js';
import { measureOverhead } from './overhead.js';
import type { ScenarioResult } from './types.js';

const ADMIN_TOKEN = 'bench-admin-token';
const FN = 'vote';
const invocation = JSON.stringify({ callId: 'bench', request: { method: 'GET', path: '/', query: {}, headers: {}, body: '' } });

export function dockerState(): { up: boolean; swarm: boolean; why: string } {
  const info = spawnSync('docker', ['info', '--format', '{{.Swarm.LocalNodeState}}'], { encoding: 'utf8', timeout: 5_000 });
  if (info.error || info.status !== 0) {
    const why = info.error ? 'no docker client on this machine' : `Docker Engine not reachable (${(info.stderr || '').trim().split('\n')[0]})`;
    return { up: false, swarm: false, why };
  }
  return { up: true, swarm: info.stdout.trim() === 'active', why: '' };
}

function check(answer: { status: number; body: string }, what: string): void {
  if (answer.status !== 200) throw new Error(`${what} answered ${answer.status}: ${answer.body.slice(0, 200)}`);
}

async function replicas(app: RunningApp): Promise<{ replicas: number; instances: string[] }> {
  const response = await fetch(`${app.url}/system/function/${FN}`);
  return (await response.json()) as { replicas: number; instances: string[] };
}

async function scaleToZero(app: RunningApp): Promise<void> {
  const response = await fetch(`${app.url}/system/scale-function/${FN}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({ serviceName: FN, replicas: 0 }),
  });
  if (!response.ok) throw new Error(`scaling ${FN} to zero answered ${response.status}: ${await response.text()}`);
  await waitUntil(async () => (await replicas(app)).replicas === 0, { timeoutMs: 30_000, intervalMs: 20, what: `${FN} at zero containers` });
}

/** `docker run --rm -i` of the function's image in one-shot mode, the invocation on stdin: the floor. */
function bareDockerRun(image: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const began = performance.now();
    const env = ['FN_MODE=oneshot', `FN_NAME=${FN}`, 'FN_ENV=OPTION_A,OPTION_B', 'OPTION_A=Cats', 'OPTION_B=Dogs'];
    const child = spawn('docker', ['run', '--rm', '-i', ...env.flatMap((e) => ['-e', e]), image], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - began;
      if (code !== 0 || !out.includes('"status":200')) reject(new Error(`docker run of ${image} exited ${code}: ${(out + err).slice(0, 300)}`));
      else resolve(ms);
    });
    child.stdin.end(invocation);
  });
}

/** The credential the runtime gave a warm container, which its `/_/invoke` asks for. */
function containerInvokeToken(name: string): string {
  const inspect = spawnSync('docker', ['inspect', '--format', '{{json .Config.Env}}', name], { encoding: 'utf8' });
  const entry = inspect.status === 0 ? (JSON.parse(inspect.stdout) as string[]).find((e) => e.startsWith(`${INVOKE_TOKEN_ENV}=`)) : undefined;
  if (!entry) throw new Error(`could not find ${INVOKE_TOKEN_ENV} of container ${name}: ${inspect.stderr.trim()}`);
  return entry.slice(INVOKE_TOKEN_ENV.length + 1);
}

function containerAddress(name: string): string {
  const inspect = spawnSync('docker', ['inspect', '--format', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', name], { encoding: 'utf8' });
  const address = inspect.stdout.trim().split(' ')[0];
  if (inspect.status !== 0 || !address) throw new Error(`could not find the address of container ${name}: ${inspect.stderr.trim()}`);
  return address;
}

async function coldStart(app: RunningApp, image: string, samples: number): Promise<ScenarioResult> {
  const gateway: number[] = [];
  const bare: number[] = [];
  await bareDockerRun(image); // image layers in the page cache for both sides
  for (let i = 0; i < samples; i++) {
    await scaleToZero(app);
    const agent = keepAlive();
    const t = performance.now();
    const answer = await call(agent, `${app.url}/function/${FN}`);
    gateway.push(performance.now() - t);
    agent.destroy();
    check(answer, `GET /function/${FN}`);
    bare.push(await bareDockerRun(image));
  }
  const g = summarize(gateway);
  const b = summarize(bare);
  return {
    id: 'cold-start-docker',
    title: 'Cold start, docker runtime: first call at zero containers vs `docker run --rm -i` of the same image',
    status: 'ok',
    metrics: [
      { name: 'first call at zero containers, median', value: g.p50, unit: 'ms', floor: { name: 'docker run --rm -i', value: b.p50 } },
      { name: 'ratio to docker run, median', value: round(g.p50 / b.p50, 2), unit: 'x', target: { op: '<=', value: 1.15 } },
    ],
    details: { function: `${FN} GET /`, image, samples, gatewayMs: g, dockerRunMs: b },
  };
}

async function warmOverhead(app: RunningApp, calls: number): Promise<ScenarioResult> {
  const agent = keepAlive();
  const viaGateway = `${app.url}/function/${FN}`;
  try {
    check(await call(agent, viaGateway), `GET /function/${FN}`);
    const [container] = (await replicas(app)).instances;
    if (!container) throw new Error(`no warm ${FN} container after a call`);
    // The runtime reaches its containers at their bridge address, port 8080, as this does.
    const direct = `http://${containerAddress(container)}:8080/_/invoke`;
    const headers = { 'content-type': 'application/json', [INVOKE_TOKEN_HEADER]: containerInvokeToken(container) };
    return await measureOverhead({
      id: 'call-overhead-docker',
      title: 'Call overhead, docker runtime: warm container through the gateway vs the container directly',
      calls,
      what: `${FN} GET /`,
      directName: 'container directly',
      viaGateway: async () => check(await call(agent, viaGateway), `GET /function/${FN}`),
      direct: async () => check(await call(agent, direct, { method: 'POST', body: invocation, headers }), 'POST /_/invoke'),
    });
  } finally {
    agent.destroy();
  }
}

export async function dockerScenarios({
  samples = 8,
  calls = 2_000,
  log = () => {},
}: {
  samples?: number;
  calls?: number;
  log?: (line: string) => void;
} = {}): Promise<ScenarioResult[]> {
  const docker = dockerState();
  const ids = [
    ['cold-start-docker', 'Cold start, docker runtime vs `docker run --rm -i` of the same image'],
    ['call-overhead-docker', 'Call overhead, docker runtime: warm container through the gateway vs directly'],
  ] as const;
  if (!docker.up) return ids.map(([id, title]) => ({ id, title, status: 'not run', reason: docker.why, metrics: [] }));
  log('building the function images (pnpm images --no-gateway)...');
  const build = spawnSync(process.execPath, [join(repoRoot, 'infra/scripts/build-images.mjs'), '--no-gateway', FN], { encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`building the function images failed: ${(build.stderr || build.stdout).trim().slice(-500)}`);
  const { image } = JSON.parse(readFileSync(join(repoRoot, 'functions', FN, 'function.json'), 'utf8')) as { image: string };
  log('starting a second app with RUNTIME=docker...');
  const app = await startApp({ env: { RUNTIME: 'docker', GATEWAY_ADMIN_TOKEN: ADMIN_TOKEN } });
  try {
    return [await coldStart(app, image, samples), await warmOverhead(app, calls)];
  } finally {
    await app.stop();
  }
}
