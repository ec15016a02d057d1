// Runs the browser tests against `docker compose up` of the real docker-compose.yml: images
// built, local stand-ins for PostgreSQL and Redis where no registry answers, free ports, and
// everything removed afterwards (containers the gateway started included).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { freePort, waitUntil } from '@voting/test-services';

const root = join(import.meta.dirname, '..');
const project = `voting-e2e-${process.pid}`;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

export default async function composeSetup(): Promise<() => Promise<void>> {
  run('bash', ['infra/scripts/ensure-docker.sh']);
  process.stdout.write(run(process.execPath, ['infra/scripts/build-images.mjs']) + '\n');
  const images = run('bash', ['infra/scripts/standin-images.sh']);
  const [votePort, resultPort] = await Promise.all([freePort(), freePort()]);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...Object.fromEntries(images.split(' ').map((pair) => pair.split('=') as [string, string])),
    DOCKER_GID: run('stat', ['-c', '%g', '/var/run/docker.sock']),
    VOTE_PORT: String(votePort),
    RESULT_PORT: String(resultPort),
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
  process.env.VOTE_URL = voteUrl;
  process.env.RESULT_URL = `http://127.0.0.1:${resultPort}`;
  return async () => {
    compose('down', '-v', '--timeout', '20');
    const left = run('docker', ['ps', '-a', '--filter', 'label=org.voting.function', '--format', '{{.Names}}']);
    if (left) throw new Error(`function containers left after docker compose down: ${left}`);
  };
}
