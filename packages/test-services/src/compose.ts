// The app as `docker compose up` runs it from the real docker-compose.yml: images built, local
// stand-ins for PostgreSQL and Redis where no registry answers, free ports, and everything
// removed afterwards (the containers the gateway started included). For browser tests and benches.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, waitUntil } from './net.js';
import { repoRoot } from './app.js';

export interface ComposeApp {
  voteUrl: string;
  resultUrl: string;
  /** The gateway's admin token (the secret compose made from infra/scripts/secrets.sh's file). */
  adminToken: string;
  /** Runs `docker-compose` with this project's name and settings. */
  compose(...args: string[]): string;
  stop(): Promise<void>;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { cwd: repoRoot, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

export async function startComposeApp({
  project = `voting-${process.pid}`,
  env: extra = {},
  log = (line: string) => process.stdout.write(`${line}\n`),
}: {
  project?: string;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
} = {}): Promise<ComposeApp> {
  run('bash', ['infra/scripts/ensure-docker.sh']);
  log(run(process.execPath, ['infra/scripts/build-images.mjs']));
  const images = run('bash', ['infra/scripts/standin-images.sh']);
  const [votePort, resultPort] = await Promise.all([freePort(), freePort()]);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...Object.fromEntries(images.split(' ').map((pair) => pair.split('=') as [string, string])),
    DOCKER_GID: run('stat', ['-c', '%g', '/var/run/docker.sock']),
    VOTE_PORT: String(votePort),
    RESULT_PORT: String(resultPort),
    ...extra,
  };
  const compose = (...args: string[]) => run('bash', ['infra/scripts/compose.sh', '-p', project, ...args], env);
  compose('up', '-d');
  const voteUrl = `http://127.0.0.1:${votePort}`;
  try {
    await waitUntil(async () => (await fetch(`${voteUrl}/healthz`)).ok, { timeoutMs: 120_000, intervalMs: 250, what: 'the compose app' });
  } catch (error) {
    process.stderr.write(compose('logs', '--tail', '50'));
    compose('down', '-v');
    throw error;
  }
  const secrets = run('bash', ['infra/scripts/secrets.sh'], env);
  return {
    voteUrl,
    resultUrl: `http://127.0.0.1:${resultPort}`,
    adminToken: readFileSync(join(secrets, 'gateway-admin-token'), 'utf8').trim(),
    compose,
    async stop() {
      // The controller labels its function containers with its controller id, `<host>-<pid>-<random>`,
      // where the host name is the container's short id.
      const gateway = compose('ps', '-q', 'controller').slice(0, 12);
      compose('down', '-v', '--timeout', '20');
      const label = 'serverless-platform.managed-by';
      const listed = gateway ? run('docker', ['ps', '-a', '--filter', `label=${label}`, '--format', `{{.Names}} {{.Label "${label}"}}`]) : '';
      const left = listed
        .split('\n')
        .filter((line) => line.split(' ')[1]?.startsWith(`${gateway}-`))
        .map((line) => line.split(' ')[0])
        .join('\n');
      if (left) throw new Error(`function containers left after docker compose down: ${left.split('\n').join(', ')}`);
    },
  };
}
