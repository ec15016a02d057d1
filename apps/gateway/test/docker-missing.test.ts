import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '@platform/test-services';
import { startEntryPoint } from './entry-point.js';

const root = join(import.meta.dirname, '..', '..', '..');
const temporary: string[] = [];
afterAll(async () => Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true }))));

/** A unix socket path where nothing is: DOCKER_HOST pointing there is a machine without Docker. */
async function absentEngine(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'no-docker-'));
  temporary.push(dir);
  return join(dir, 'docker.sock');
}
const line = (socket: string) => `✖ no Docker Engine answers at ${socket}: install Docker (Docker Desktop on macOS) and start it, or set DOCKER_HOST`;

describe('a command that needs Docker, without it', () => {
  // Break it catches: the runtime's connection error logged as it comes (`connect ENOENT …`),
  // saying nothing of what to install or start.
  it('RUNTIME=docker start: one line saying what to install or start, last, and exit status 1', { timeout: 60_000 }, async () => {
    const socket = await absentEngine();
    const dataDir = await mkdtemp(join(tmpdir(), 'voting-no-docker-'));
    temporary.push(dataDir);
    const app = await startEntryPoint(
      { RUNTIME: 'docker', DOCKER_HOST: `unix://${socket}`, LOG_FORMAT: 'pretty', GATEWAY_WORKERS: '1', EMBEDDED_POSTGRES_PORT: String(await freePort()) },
      dataDir,
    );
    expect(await app.exited).toBe(1);
    expect(app.output().trimEnd().split('\n').at(-1)).toBe(line(socket));
  });

  // Break it catches: a script going on without an engine (a stack trace from the Docker client,
  // dockerd started here for an engine named elsewhere) or failing without the line.
  it('npm run images, stack:deploy, stack:rm and compose: the same line, exit status 1', async () => {
    const socket = await absentEngine();
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, DOCKER_HOST: `unix://${socket}` };
    for (const command of [
      [process.execPath, 'infra/scripts/build-images.mjs'],
      ['bash', 'infra/scripts/stack.sh', 'deploy'],
      ['bash', 'infra/scripts/stack.sh', 'rm'],
      ['bash', 'infra/scripts/compose.sh', 'up', '-d'],
    ]) {
      const run = spawnSync(command[0]!, command.slice(1), { cwd: root, env, encoding: 'utf8', timeout: 30_000 });
      expect(run.status, command.join(' ')).toBe(1);
      expect(run.stderr, command.join(' ')).toBe(`${line(socket)}\n`);
    }
  });
});
