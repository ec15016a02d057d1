// Data left by an earlier stack: `stack.sh rm` keeps the volumes, so a deploy from another clone
// (secret files of its own) finds a database made with another password. The deploy must stop at
// once with one line saying what to do, not restart the gateway until it gives up. This runs after
// the other stack tests: it removes the stack (the global teardown then removes its volumes).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { freePort } from '@platform/test-services';
import { engine, services } from './engine.js';

const root = join(import.meta.dirname, '../..');
const stack = () => process.env.STACK_NAME!;
const volume = () => `${stack()}_db-data`;

/** Runs stack.sh; a deploy that does not stop is killed after `timeoutMs`, its stack left to the teardown. */
function stackScript(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number) {
  const began = Date.now();
  const run = spawnSync('bash', ['infra/scripts/stack.sh', ...args], { cwd: root, env, encoding: 'utf8', timeout: timeoutMs });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr, ms: Date.now() - began };
}

test('a deploy next to the data of an earlier stack stops at once with one line saying what to do', async () => {
  const removed = stackScript(['rm', stack()], process.env, 120_000);
  expect(removed.status, removed.stderr).toBe(0);
  expect(await services(`com.docker.stack.namespace=${stack()}`)).toEqual([]);
  const kept = await engine<{ Labels: Record<string, string> }>('GET', `/volumes/${volume()}`);
  expect(kept.Labels['com.docker.stack.namespace']).toBe(stack());

  const secrets = mkdtempSync(join(tmpdir(), 'voting-stack-secrets-'));
  try {
    const [votePort, resultPort] = await Promise.all([freePort(), freePort()]);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      VOTING_SECRETS: secrets,
      NO_BUILD: '1',
      VOTE_PORT: String(votePort),
      RESULT_PORT: String(resultPort),
      LOG_LEVEL: 'warn',
    };
    const line = `✖ the volume ${volume()} holds a database made with another password: copy the secret files it was made with into ${secrets}, or remove the old data with npm run stack:rm -- ${stack()} --volumes`;

    // A fresh clone: no secret files yet. Nothing is deployed and no password is made.
    const fresh = stackScript(['deploy', stack()], env, 60_000);
    test.info().annotations.push({ type: 'no secret files', description: `stopped after ${fresh.ms} ms` });
    expect(fresh.status, fresh.stdout + fresh.stderr).toBe(1);
    expect(fresh.stderr.trim()).toBe(line);
    expect(fresh.ms).toBeLessThan(10_000);
    expect(await services(`com.docker.stack.namespace=${stack()}`)).toEqual([]);
    expect(existsSync(join(secrets, 'postgres-password'))).toBe(false);

    // Secret files, but not the ones the data was made with: the gateway says so at start-up and
    // the deploy stops then, removing the stack again and keeping the data.
    const made = spawnSync('bash', ['infra/scripts/secrets.sh'], { cwd: root, env, encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const wrong = stackScript(['deploy', stack()], { ...env, WAIT_SECONDS: '170' }, 150_000);
    test.info().annotations.push({ type: 'other secret files', description: `stopped after ${wrong.ms} ms` });
    expect(wrong.status, wrong.stdout + wrong.stderr).toBe(1);
    expect(wrong.stderr.trim().split('\n').at(-1)).toBe(line);
    expect(wrong.ms).toBeLessThan(60_000);
    expect(await services(`com.docker.stack.namespace=${stack()}`)).toEqual([]);
    expect((await engine<{ Name: string }>('GET', `/volumes/${volume()}`)).Name).toBe(volume());
  } finally {
    rmSync(secrets, { recursive: true, force: true });
  }
});
