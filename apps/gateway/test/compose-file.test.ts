import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const temporary: string[] = [];
afterAll(async () => Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true }))));

/** Docker Compose as installed: the v2 plugin, else docker-compose (v1.29 on Debian). */
const compose = spawnSync('docker', ['compose', 'version']).status === 0 ? ['docker', 'compose'] : ['docker-compose'];
const message = 'run npm run compose:up (or npm run stack:deploy), which makes the secrets and images first';

// Break it catches: a plain `docker compose up` on a fresh clone going on without the secrets
// the scripts make (failing later on a missing secret file or image, with no word of the
// scripts), or the variable made required in a form `docker stack deploy` cannot read.
it('docker-compose.yml stops without VOTING_SECRETS, pointing to npm run compose:up; with it, Compose and the stack read it', async () => {
  const secrets = await mkdtemp(join(tmpdir(), 'compose-secrets-'));
  temporary.push(secrets);
  for (const name of ['postgres-password', 'redis-password', 'redis-config', 'cookie-secret', 'gateway-admin-token']) await writeFile(join(secrets, name), 'x');
  const bare = { PATH: process.env.PATH, HOME: process.env.HOME };
  for (const command of [
    [...compose, '-f', 'docker-compose.yml', 'config', '-q'],
    ['docker', 'stack', 'config', '-c', 'docker-compose.yml'],
  ]) {
    const without = spawnSync(command[0]!, command.slice(1), { cwd: root, env: bare, encoding: 'utf8', timeout: 30_000 });
    expect(without.status, command.join(' ')).not.toBe(0);
    expect(without.stderr, command.join(' ')).toContain(`: ${message}`);
    const withSecrets = spawnSync(command[0]!, command.slice(1), { cwd: root, env: { ...bare, VOTING_SECRETS: secrets }, encoding: 'utf8', timeout: 30_000 });
    expect(withSecrets.stderr, command.join(' ')).toBe('');
    expect(withSecrets.status, command.join(' ')).toBe(0);
  }
});
