// Deploys to the running stack (swarm runtime), as a workshop does them: `fn new`, `fn deploy`
// (which builds the image onto this engine), calls, `fn rm`; the function's Swarm service comes
// and goes.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import { repoRoot } from '@platform/test-services';
import { functionServices } from './engine.js';

const run = promisify(execFile);
const stack = () => process.env.STACK_NAME!;
const name = 'hello-swarm';
const fn = (args: string[], cwd: string) =>
  run(process.execPath, [join(repoRoot, 'packages/cli/dist/main.js'), '--gateway', process.env.VOTE_URL!, ...args], {
    cwd,
    env: { ...process.env, GATEWAY_ADMIN_TOKEN: process.env.GATEWAY_ADMIN_TOKEN },
  });
const greet = async () => {
  const response = await fetch(`${process.env.VOTE_URL}/function/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"name":"swarm"}',
  });
  return { status: response.status, body: (await response.json()) as { greeting?: string; instance?: string } };
};

test('a Python function written with fn new is deployed and removed with fn while the stack runs', async () => {
  test.setTimeout(240_000);
  const root = mkdtempSync(join(tmpdir(), 'stack-deploy-'));
  try {
    await fn(['new', name, '--lang', 'python', '--dir', 'functions'], root);
    let began = Date.now();
    const deployed = await fn(['deploy', `functions/${name}`], root);
    const deployMs = Date.now() - began;
    expect(deployed.stderr).toContain(`› building the image voting/fn-${name}:latest for the swarm runtime`);
    expect(deployed.stdout).toBe(`${name}: deployed; call it at ${process.env.VOTE_URL}/function/${name}\n`);
    expect(await functionServices(stack(), name)).toHaveLength(1);
    began = Date.now();
    const first = await greet();
    const firstCallMs = Date.now() - began;
    expect(first).toMatchObject({ status: 200, body: { greeting: 'Hello, swarm!' } });
    // The figures of a live deploy on Swarm, in the output and the report.
    const figures = `fn deploy (image build included) ${deployMs} ms, first call (scale from zero) ${firstCallMs} ms`;
    test.info().annotations.push({ type: 'python on swarm', description: figures });
    process.stdout.write(`python on swarm: ${figures}\n`);

    expect((await fn(['rm', name], root)).stdout).toBe(`${name}: removed\n`);
    expect((await greet()).status).toBe(404);
    // Its instances drained, its service goes.
    await expect.poll(async () => (await functionServices(stack(), name)).length, { timeout: 60_000 }).toBe(0);
  } finally {
    await fn(['rm', name], root).catch(() => {});
    rmSync(root, { recursive: true, force: true });
    await run('docker', ['image', 'rm', '-f', `voting/fn-${name}:latest`]).catch(() => {});
  }
});
