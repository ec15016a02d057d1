// Deploys to the running stack (swarm runtime), as a workshop does them: `fn new`, `fn deploy`
// (which builds the image onto this engine), calls, an edit deployed again while calls keep
// coming, `fn rm`; a service per version of the function comes and goes.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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
const greet = async (fnName = name) => {
  const response = await fetch(`${process.env.VOTE_URL}/function/${fnName}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"name":"swarm"}',
  });
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) as { greeting?: string; instance?: string; error?: string } };
  } catch {
    return { status: response.status, body: { error: text } };
  }
};

test('a Python function written with fn new is deployed, updated under calls and removed with fn while the stack runs', async () => {
  test.setTimeout(300_000);
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

    // An edit deployed again while 8 callers keep calling: a new version's service beside the old,
    // calls in flight finish on the old tasks, new calls go to the new ones, and no call fails.
    // Break it catches: the service updated in place (Swarm replacing the tasks under the calls).
    const main = join(root, 'functions', name, 'main.py');
    writeFileSync(main, readFileSync(main, 'utf8').replace('f"Hello, {name}!"', 'f"Welcome, {name}!"'));
    let calling = true;
    const answers: Array<{ status: number; greeting?: string; error?: string; sentAt: number }> = [];
    const callers = Array.from({ length: 8 }, async () => {
      while (calling) {
        const sentAt = Date.now();
        const { status, body } = await greet().catch((error: Error) => ({ status: 0, body: { greeting: undefined, error: error.message } }));
        answers.push({ status, greeting: body.greeting, error: body.error, sentAt });
      }
    });
    // The service of the version running now: the update brings one of its own (the old one goes once drained).
    const [before, ...others] = await functionServices(stack(), name);
    expect(others).toEqual([]);
    began = Date.now();
    await fn(['deploy', `functions/${name}`], root);
    const updateMs = Date.now() - began;
    await expect.poll(() => answers.at(-1)?.greeting, { timeout: 60_000 }).toBe('Welcome, swarm!');
    const switchedAt = Date.now();
    // Calls keep coming for a while after the switch: none may reach the old version.
    while (Date.now() - switchedAt < 2_000) await new Promise((r) => setTimeout(r, 100));
    calling = false;
    await Promise.all(callers);
    const update = `fn deploy of an edit ${updateMs} ms, first new greeting after ${switchedAt - began} ms, ${answers.length} calls meanwhile`;
    test.info().annotations.push({ type: 'update on swarm', description: update });
    process.stdout.write(`python on swarm: ${update}\n`);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(answers.length).toBeGreaterThan(20);
    // A switch, not a mix: every call sent after the new greeting was first seen gets it.
    const late = answers.filter((a) => a.sentAt > switchedAt);
    expect(late.length).toBeGreaterThan(10);
    expect(late.filter((a) => a.greeting !== 'Welcome, swarm!')).toEqual([]);
    // The old version's tasks drained, its service goes; the new version's, another service, stays.
    await expect.poll(async () => (await functionServices(stack(), name)).map((s) => s.ID), { timeout: 60_000 }).toEqual([expect.any(String)]);
    const [after] = await functionServices(stack(), name);
    expect(after!.ID).not.toBe(before!.ID);
    expect((await greet()).body.greeting).toBe('Welcome, swarm!');

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

test('a Node function written with fn new is deployed and removed with fn while the stack runs', async () => {
  test.setTimeout(180_000);
  const nodeName = 'hello-swarm-node';
  const root = mkdtempSync(join(tmpdir(), 'stack-deploy-'));
  try {
    await fn(['new', nodeName, '--lang', 'node', '--dir', 'functions'], root);
    // Its one dependency, the function contract, from this checkout (as a folder in the workspace has it).
    const modules = join(root, 'functions', nodeName, 'node_modules', '@platform');
    mkdirSync(modules, { recursive: true });
    symlinkSync(join(repoRoot, 'packages/function-contract'), join(modules, 'function-contract'));
    let began = Date.now();
    const deployed = await fn(['deploy', `functions/${nodeName}`], root);
    const deployMs = Date.now() - began;
    expect(deployed.stderr).toContain(`› building the image voting/fn-${nodeName}:latest for the swarm runtime`);
    expect(await functionServices(stack(), nodeName)).toHaveLength(1);
    began = Date.now();
    const first = await greet(nodeName);
    const firstCallMs = Date.now() - began;
    expect(first).toMatchObject({ status: 200, body: { greeting: 'Hello, swarm!' } });
    const figures = `fn deploy (image build included) ${deployMs} ms, first call (scale from zero) ${firstCallMs} ms`;
    test.info().annotations.push({ type: 'node on swarm', description: figures });
    process.stdout.write(`node on swarm: ${figures}\n`);
    expect((await fn(['rm', nodeName], root)).stdout).toBe(`${nodeName}: removed\n`);
    expect((await greet(nodeName)).status).toBe(404);
    await expect.poll(async () => (await functionServices(stack(), nodeName)).length, { timeout: 60_000 }).toBe(0);
  } finally {
    await fn(['rm', nodeName], root).catch(() => {});
    rmSync(root, { recursive: true, force: true });
    await run('docker', ['image', 'rm', '-f', `voting/fn-${nodeName}:latest`]).catch(() => {});
  }
});
