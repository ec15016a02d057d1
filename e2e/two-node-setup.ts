// Runs the two-node Swarm tests: two more Docker Engines, each in a network namespace of its own
// (infra/scripts/two-node-swarm.sh), made into a Swarm (a manager and a worker), the stack deployed
// onto it from the real docker-compose.yml with its data on the worker, and all of it removed
// afterwards. Needs root: network namespaces and a dockerd each.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const script = 'infra/scripts/two-node-swarm.sh';

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

/** What the tests need to know of the nodes: each one's engine and where its edge listens. */
export const NODES = [
  { name: 'vnode1', socket: '/run/vnode1.sock', url: 'http://10.231.0.11:8080' },
  { name: 'vnode2', socket: '/run/vnode2.sock', url: 'http://10.231.0.12:8080' },
] as const;

export default async function twoNodeSetup(): Promise<() => Promise<void>> {
  if (process.getuid?.() !== 0) {
    throw new Error(`the two-node Swarm tests need root: they make network namespaces and run two more Docker Engines (${script}); run npm test as root`);
  }
  run('bash', ['infra/scripts/ensure-docker.sh']);
  // The images the nodes get are this checkout's.
  run(process.execPath, ['infra/scripts/build-images.mjs']);
  const down = () => process.stdout.write(`${run('bash', [script, 'down'])}\n`);
  const secrets = mkdtempSync(join(tmpdir(), 'voting-two-node-secrets-'));
  const stack = `tn-${process.pid}`;
  process.env.STACK_NAME = stack; // what `down` removes first
  try {
    process.stdout.write(`${run('bash', [script, 'up'])}\n`);
    // DOCKER_HOST, DOCKER_SOCKET, PUBLIC_HOST, NO_BUILD: the manager's engine and address.
    const nodeEnv = Object.fromEntries(
      run('bash', [script, 'env'])
        .replace(/^export /, '')
        .split(' ')
        .map((pair) => pair.split('=') as [string, string]),
    );
    Object.assign(process.env, nodeEnv);
    const worker = run('docker', ['node', 'ls', '--filter', 'role=worker', '-q']);
    run('docker', ['node', 'update', '--label-add', 'voting-test.side=data', worker]);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      VOTING_SECRETS: secrets,
      EXTRA_COMPOSE_FILE: join(root, 'e2e/two-node.fixtures.yml'),
      LOG_LEVEL: 'info',
      GATEWAY_REPLICAS: '2',
      // Low, so that the tests' load is enough to ask for a second edge; and a short idle window.
      EDGE_TARGET_CPU: '0.15',
      EDGE_SCALE_DOWN_SECONDS: '10',
    };
    process.stdout.write(`${run('bash', ['infra/scripts/stack.sh', 'deploy', stack], env)}\n`);
  } catch (error) {
    down();
    rmSync(secrets, { recursive: true, force: true });
    throw error;
  }
  process.env.GATEWAY_ADMIN_TOKEN = readFileSync(join(secrets, 'gateway-admin-token'), 'utf8').trim();
  return async () => {
    try {
      down();
    } finally {
      rmSync(secrets, { recursive: true, force: true });
    }
  };
}
