import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appProcess, createTestDatabase, waitUntil, type AppProcess } from '@platform/test-services';
import { repoFunctions, startTestGateway, type TestGateway } from './harness.js';

// A workshop deploys while the room votes: `fn new`, then `fn deploy` to the gateway running now,
// no restart; every edge routes to it; it stays deployed across restarts; `fn rm` takes it away.

const run = promisify(execFile);
const cli = join(import.meta.dirname, '..', '..', '..', 'packages', 'cli', 'dist', 'main.js');
const token = 'test-admin-token';
const fn = (args: string[], cwd: string) =>
  run(process.execPath, [cli, ...args], { cwd }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
const greet = async (base: string, name: string) => {
  const response = await fetch(`${base}/function/${name}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"workshop"}' });
  return { status: response.status, body: (await response.json()) as { greeting?: string; instance?: string; error?: string } };
};
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

    expect((await cmd('deploy', 'functions/hello')).stdout).toBe(`hello: updated; call it at ${t.url}/function/hello\n`);
    const second = await greet(t.url, 'hello');
    expect(second.status).toBe(200);
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
