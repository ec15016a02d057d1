import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appProcess, createTestDatabase, waitUntil, type AppProcess } from '@platform/test-services';
import Docker from 'dockerode';
import { prepareDocker } from './docker-network.js';
import { repoFunctions, startTestGateway, type TestGateway } from './harness.js';

// A workshop deploys while the room votes: `fn new`, then `fn deploy` to the gateway running now,
// no restart; every edge routes to it; it stays deployed across restarts; `fn rm` takes it away.

const run = promisify(execFile);
const cli = join(import.meta.dirname, '..', '..', '..', 'packages', 'cli', 'dist', 'main.js');
const token = 'test-admin-token';
// Only the token a test gives: never one from the environment, nor a local `npm start`'s file.
const fn = (args: string[], cwd: string) =>
  run(process.execPath, [cli, ...args], { cwd, env: { ...process.env, GATEWAY_ADMIN_TOKEN: '', GATEWAY_ADMIN_TOKEN_FILE: join(cwd, 'no-token-here') } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
const greet = async (base: string, name: string) => {
  const response = await fetch(`${base}/function/${name}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"workshop"}' });
  return { status: response.status, body: (await response.json()) as { greeting?: string; instance?: string; error?: string } };
};
/** An edit a workshop makes between two deploys: the greeting's first word. */
async function editGreeting(folder: string, word: string): Promise<void> {
  const main = join(folder, 'main.py');
  await writeFile(main, (await readFile(main, 'utf8')).replace('f"Hello, {name}!"', `f"${word}, {name}!"`));
}
const deployApi = (base: string, method: 'POST' | 'PUT', manifest: unknown) =>
  fetch(`${base}/system/functions`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(manifest),
  });

describe('deploying to a running gateway', () => {
  let root: string;
  let db: { url: string; drop(): Promise<void> };
  let t: TestGateway;
  const start = () => startTestGateway({ functionsDir: join(root, 'functions'), database: db.url, options: { auth: { token, user: 'admin' } } });
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'deploy-'));
    await mkdir(join(root, 'functions'));
    db = await createTestDatabase(process.env.DATABASE_URL!);
    t = await start();
  });
  afterAll(async () => {
    await t?.close();
    await db?.drop();
    await rm(root, { recursive: true, force: true });
  });

  // Break it catches: fn deploy sending the manifest with its defaults filled in (`private: false`
  // for a function.json that leaves it out), which makes a private function public on an update.
  it('fn deploy of a folder that leaves private out keeps a private function private', async () => {
    expect((await fn(['new', 'hidden', '--lang', 'python'], root)).code).toBe(0);
    const manifestFile = join(root, 'functions', 'hidden', 'function.json');
    const written = JSON.parse(await readFile(manifestFile, 'utf8')) as Record<string, unknown>;
    const cmd = (...args: string[]) => fn(['--gateway', t.url, '--token', token, ...args], root);
    await writeFile(manifestFile, JSON.stringify({ ...written, private: true }));
    expect((await cmd('deploy', 'functions/hidden')).code).toBe(0);
    expect((await greet(t.url, 'hidden')).status).toBe(403);
    const { private: _left, ...withoutPrivate } = written;
    await writeFile(manifestFile, JSON.stringify(withoutPrivate));
    expect((await cmd('deploy', 'functions/hidden')).stdout).toBe(`hidden: updated; call it at ${t.url}/function/hidden\n`);
    expect((await greet(t.url, 'hidden')).status).toBe(403);
    expect((await cmd('rm', 'hidden')).code).toBe(0);
  });

  // Break it catches: functions fixed at start (404 until a restart), an update that keeps calling
  // the old instance, or a removal that leaves the route answering.
  it('fn deploy makes a new function callable at once; deployed again it is updated (new calls, new instance); fn rm takes it away', async () => {
    expect((await fn(['new', 'hello', '--lang', 'python'], root)).code).toBe(0);
    expect((await greet(t.url, 'hello')).status).toBe(404);
    const cmd = (...args: string[]) => fn(['--gateway', t.url, '--token', token, ...args], root);

    const deployed = await cmd('deploy', 'functions/hello');
    expect(deployed).toMatchObject({ code: 0, stdout: `hello: deployed; call it at ${t.url}/function/hello\n` });
    const first = await greet(t.url, 'hello');
    expect(first).toMatchObject({ status: 200, body: { greeting: 'Hello, workshop!' } });

    await editGreeting(join(root, 'functions', 'hello'), 'Welcome');
    expect((await cmd('deploy', 'functions/hello')).stdout).toBe(`hello: updated; call it at ${t.url}/function/hello\n`);
    const second = await greet(t.url, 'hello');
    expect(second).toMatchObject({ status: 200, body: { greeting: 'Welcome, workshop!' } });
    expect(second.body.instance).not.toBe(first.body.instance);
    const timeline = () => t.gateway.platform.snapshot().timeline;
    await waitUntil(() => timeline().some((e) => e.kind === 'stopped' && e.instance === first.body.instance && e.detail === 'updated'), {
      timeoutMs: 10_000,
      what: 'the instance of before the update to stop',
    });
    expect(
      timeline()
        .filter((e) => e.function === 'hello' && (e.kind === 'deployed' || e.kind === 'updated'))
        .map((e) => e.kind),
    ).toEqual(['updated', 'deployed']);

    expect(await cmd('rm', 'hello')).toMatchObject({ code: 0, stdout: 'hello: removed\n' });
    expect(await greet(t.url, 'hello')).toEqual({ status: 404, body: { error: 'function "hello" not found' } });
    const again = await cmd('rm', 'hello');
    expect(again.code).toBe(1);
    expect(again.stderr).toBe('fn: 404: function "hello" not found\n');
    // Without the admin token: refused, nothing deployed.
    const anonymous = await fn(['--gateway', t.url, 'deploy', 'functions/hello'], root);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/^fn: 401: credentials required/m);
    expect((await greet(t.url, 'hello')).status).toBe(404);
  });

  // Break it catches: an update that stops the old instances with calls still on them, or sends
  // new calls to instances already stopping (each a failed call).
  it('loses no call to a function updated twice under load', { timeout: 60_000 }, async () => {
    expect((await fn(['new', 'busy', '--lang', 'python'], root)).code).toBe(0);
    const manifest = { name: 'busy', main: 'main.py', image: 'voting/fn-busy:latest', maxInstances: 2, maxConcurrency: 64 };
    expect((await deployApi(t.url, 'POST', manifest)).status).toBe(202);
    let loading = true;
    const statuses: number[] = [];
    const instances = new Set<string>();
    const callers = Array.from({ length: 12 }, async () => {
      while (loading) {
        const { status, body } = await greet(t.url, 'busy');
        statuses.push(status);
        if (body.instance) instances.add(body.instance);
      }
    });
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    await sleep(1_000);
    for (const description of ['first change', 'second change']) {
      expect((await deployApi(t.url, 'PUT', { ...manifest, description })).status).toBe(202);
      await sleep(1_000);
    }
    loading = false;
    await Promise.all(callers);
    console.log(`update under load: ${statuses.length} calls, ${instances.size} instances`);
    expect(statuses.length).toBeGreaterThan(100);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // Each update brought new instances: at least one before, one after each.
    expect(instances.size).toBeGreaterThanOrEqual(3);
  });

  // Break it catches: deployed functions kept in the controller's memory only.
  it('keeps a deployed function across a restart', async () => {
    expect((await fn(['new', 'kept', '--lang', 'python'], root)).code).toBe(0);
    // Deployed with a manifest of its own (none in its folder): only the database knows of it.
    await rm(join(root, 'functions', 'kept', 'function.json'));
    const answer = await deployApi(t.url, 'POST', { name: 'kept', main: 'main.py', description: 'deployed, not declared', maxInstances: 1 });
    expect(answer.status).toBe(202);
    expect((await greet(t.url, 'kept')).status).toBe(200);
    await t.close();
    t = await start();
    expect(await greet(t.url, 'kept')).toMatchObject({ status: 200, body: { greeting: 'Hello, workshop!' } });
    const listed = (await (await fetch(`${t.url}/system/function/kept`)).json()) as { annotations: Record<string, string> };
    expect(listed.annotations).toEqual({ description: 'deployed, not declared' });
    // Its code gone, a restart leaves it out rather than failing: the other functions still run.
    // Break it catches: a controller that cannot start (nor lead) because of one deployed function.
    await rm(join(root, 'functions', 'kept'), { recursive: true });
    await t.close();
    t = await start();
    expect((await greet(t.url, 'kept')).status).toBe(404);
    expect((await greet(t.url, 'busy')).status).toBe(200);
  });
});

describe('deploying to a tier: a controller and two edges', () => {
  let root: string;
  let db: { url: string; drop(): Promise<void> };
  const processes: AppProcess[] = [];
  beforeAll(async () => {
    // The app's functions, linked, beside the one the workshop writes.
    root = await mkdtemp(join(tmpdir(), 'deploy-tier-'));
    await mkdir(join(root, 'functions'));
    for (const name of ['vote', 'record-vote', 'results']) await symlink(join(repoFunctions, name), join(root, 'functions', name));
    db = await createTestDatabase(process.env.DATABASE_URL!);
    const shared = { DATABASE_URL: db.url, FUNCTIONS_DIR: join(root, 'functions'), GATEWAY_ADMIN_TOKEN: token };
    const edges = await Promise.all([0, 1].map(() => appProcess({ env: { ...shared, GATEWAY_ROLE: 'edge' } })));
    const controller = await appProcess({ env: { ...shared, GATEWAY_ROLE: 'controller', FUNCTION_GATEWAY_URL: edges[0]!.url } });
    processes.push(controller, ...edges);
    await controller.start();
    await Promise.all(edges.map((edge) => edge.start()));
  }, 120_000);
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.close()));
    await db?.drop();
    await rm(root, { recursive: true, force: true });
  });

  // Break it catches: a deploy seen only by the edge that took it (pools made from each edge's own folder scan).
  it('routes a function deployed through one edge on the other at once, and stops routing it on both once removed', { timeout: 60_000 }, async () => {
    const [, a, b] = processes as [AppProcess, AppProcess, AppProcess];
    expect((await fn(['new', 'hello', '--lang', 'python'], root)).code).toBe(0);
    const deployed = await fn(['--gateway', a.url, '--token', token, 'deploy', 'functions/hello'], root);
    expect(deployed.stderr).toBe('› deploying hello\n');
    expect(deployed.code).toBe(0);
    expect(await greet(b.url, 'hello')).toMatchObject({ status: 200, body: { greeting: 'Hello, workshop!' } });
    expect(await greet(a.url, 'hello')).toMatchObject({ status: 200 });
    expect((await fn(['--gateway', b.url, '--token', token, 'rm', 'hello'], root)).code).toBe(0);
    expect((await greet(b.url, 'hello')).status).toBe(404);
    await waitUntil(async () => (await greet(a.url, 'hello')).status === 404, { timeoutMs: 5_000, what: 'the other edge to stop routing it' });
  });
});

describe('deploying on the docker runtime', () => {
  let root: string;
  let t: TestGateway;
  const name = 'hello-container';
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'deploy-docker-'));
    await mkdir(join(root, 'functions'));
    t = await startTestGateway({
      functionsDir: join(root, 'functions'),
      runtime: 'docker',
      docker: await prepareDocker(),
      options: { auth: { token, user: 'admin' } },
    });
  }, 300_000);
  afterAll(async () => {
    await t?.close();
    await new Docker()
      .getImage(`voting/fn-${name}:latest`)
      .remove()
      .catch(() => {});
    await rm(root, { recursive: true, force: true });
  });

  // Break it catches: fn deploy sending a manifest whose image was never built (the docker runtime refuses it).
  it('fn deploy builds the image of a Python function and deploys it; fn rm removes it', { timeout: 180_000 }, async () => {
    await new Docker()
      .getImage(`voting/fn-${name}:latest`)
      .remove()
      .catch(() => {});
    expect((await fn(['new', name, '--lang', 'python'], root)).code).toBe(0);
    const cmd = (...args: string[]) => fn(['--gateway', t.url, '--token', token, ...args], root);
    const deployed = await cmd('deploy', `functions/${name}`);
    expect(deployed.stderr).toContain(`› building the image voting/fn-${name}:latest for the docker runtime`);
    expect(deployed).toMatchObject({ code: 0, stdout: `${name}: deployed; call it at ${t.url}/function/${name}\n` });
    const first = await greet(t.url, name);
    expect(first).toMatchObject({ status: 200, body: { greeting: 'Hello, workshop!' } });
    await editGreeting(join(root, 'functions', name), 'Welcome');
    expect((await cmd('deploy', `functions/${name}`)).stdout).toContain(`${name}: updated`);
    const second = await greet(t.url, name);
    expect(second).toMatchObject({ status: 200, body: { greeting: 'Welcome, workshop!' } });
    expect(second.body.instance).not.toBe(first.body.instance);
    expect((await cmd('rm', name)).code).toBe(0);
    expect((await greet(t.url, name)).status).toBe(404);
  });
});
