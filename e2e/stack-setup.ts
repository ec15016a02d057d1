// Runs the browser tests and the Swarm tests against the app deployed as a Swarm stack from the
// real docker-compose.yml (`pnpm stack:deploy`'s script, RUNTIME=swarm): a single-node Swarm
// initialised if there is none, images built, local stand-ins for PostgreSQL and Redis where no
// registry answers, free ports, and the stack removed afterwards with nothing of it left.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@platform/test-services';
import { leftovers } from './stack-tests/engine.js';

const root = join(import.meta.dirname, '..');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(cmd, args, { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

export default async function stackSetup(): Promise<() => Promise<void>> {
  const stack = `e2e-${process.pid}`;
  run('bash', ['infra/scripts/ensure-docker.sh']);
  // The fixture functions' image, for the test functions merged in by stack.fixtures.yml.
  const fixtures = join(root, 'apps/gateway/test/fixtures/functions');
  run(process.execPath, ['infra/scripts/build-images.mjs', '--functions-dir', fixtures, '--no-gateway']);
  const [votePort, resultPort] = await Promise.all([freePort(), freePort()]);
  const secrets = mkdtempSync(join(tmpdir(), 'voting-stack-secrets-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    VOTE_PORT: String(votePort),
    RESULT_PORT: String(resultPort),
    VOTING_SECRETS: secrets,
    EXTRA_COMPOSE_FILE: join(root, 'e2e/stack.fixtures.yml'),
    FIXTURE_MANIFESTS: join(root, 'e2e/stack-functions'),
    LOG_LEVEL: 'warn',
  };
  const remove = () => {
    try {
      return run('bash', ['infra/scripts/stack.sh', 'rm', stack, '--volumes'], env);
    } finally {
      rmSync(secrets, { recursive: true, force: true });
    }
  };
  try {
    process.stdout.write(`${run('bash', ['infra/scripts/stack.sh', 'deploy', stack], env)}\n`);
  } catch (error) {
    remove();
    throw error;
  }
  process.env.VOTE_URL = `http://127.0.0.1:${votePort}`;
  process.env.RESULT_URL = `http://127.0.0.1:${resultPort}`;
  process.env.STACK_NAME = stack;
  process.env.GATEWAY_ADMIN_TOKEN = readFileSync(join(secrets, 'gateway-admin-token'), 'utf8').trim();
  // The browser test times a vote until the result page shows it (2 s), not three cold starts
  // in a row: the app's functions get a replica each first (the Swarm tests time cold starts).
  try {
    for (const fn of ['vote', 'record-vote', 'results']) {
      const scaled = await fetch(`${process.env.VOTE_URL}/system/scale-function/${fn}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${process.env.GATEWAY_ADMIN_TOKEN}` },
        body: JSON.stringify({ replicas: 1 }),
      });
      if (scaled.status !== 200) throw new Error(`scaling ${fn} to 1 answered ${scaled.status}: ${await scaled.text()}`);
    }
  } catch (error) {
    remove();
    throw error;
  }
  return async () => {
    process.stdout.write(`${remove()}\n`);
    const left = await leftovers(stack);
    if (left.length) throw new Error(`left behind after removing stack ${stack}: ${left.join(', ')}`);
  };
}
