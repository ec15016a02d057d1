import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { FunctionManifest } from '@platform/function-contract/manifest';
import { Controller } from '@platform/core/controller/controller';
import { controllerApi } from '@platform/core/controller/api';
import { ProcessRuntime } from '@platform/core/runtimes/process';
import { appProcess, createTestDatabase, waitUntil, type AppProcess } from '@platform/test-services';
import { fixtureFunctions, functionsFolder, repoFunctions } from './harness.js';

// The controller API (deploy, remove, scale, logs, instances) answers the controller token alone,
// which controllers and edges hold; functions hold the invoke token at most, and it opens nothing there.

/** A process's environment, as the kernel keeps it. */
function environOf(pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

/** Every process below `pid`, children of children included. */
function descendantsOf(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readdirSync(`/proc/${pid}/task`).flatMap((task) =>
      readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
  return children.flatMap((child) => [child, ...descendantsOf(child)]);
}

const environs = (app: AppProcess) =>
  descendantsOf(app.pid()!).flatMap((pid) => {
    try {
      return [{ pid, env: environOf(pid) }];
    } catch {
      return []; // gone meanwhile
    }
  });

/** Each route of the controller API (method and path), read from the router itself: one added later is covered too. */
async function controllerRoutes(): Promise<Array<{ method: string; path: string }>> {
  const runtime = new ProcessRuntime({ env: {}, secret: () => undefined });
  const controller = await Controller.start(runtime, []);
  const api = controllerApi(controller, { token: 'unused', log: { error: () => {} } });
  try {
    const layers = (api.router as unknown as { stack: Array<{ route?: { path: string; methods: Record<string, boolean> } }> }).stack;
    return layers.flatMap(({ route }) => (route ? Object.keys(route.methods).map((method) => ({ method: method.toUpperCase(), path: route.path })) : []));
  } finally {
    api.stop();
    await controller.close();
    await runtime.close();
  }
}

/** The platform's tokens the database holds (those made there, none being configured). */
async function storedTokens(databaseUrl: string): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string; value: string }>(
      "SELECT name, value FROM platform_secrets WHERE name IN ('gateway-invoke-token', 'gateway-controller-token')",
    );
    return Object.fromEntries(rows.map((r) => [r.name, r.value]));
  } finally {
    await client.end();
  }
}

describe("the controller API's credential, configured", () => {
  let app: AppProcess;
  let db: { url: string; drop(): Promise<void> };
  let controllerUrl: string;
  // Configured as an operator would, in the controller's environment: where a runtime passing its own environment on would leak it.
  const controllerToken = `controller-${randomBytes(16).toString('hex')}`;
  let invokeToken: string;
  beforeAll(async () => {
    db = await createTestDatabase(process.env.DATABASE_URL!);
    app = await appProcess({ env: { GATEWAY_WORKERS: '2', DATABASE_URL: db.url, GATEWAY_CONTROLLER_TOKEN: controllerToken } });
    await app.start();
    // The edges are the children given the controller's URL; they hold the controller token.
    const edge = await waitUntil(() => environs(app).find(({ env }) => env.CONTROLLER_URL)?.env, { timeoutMs: 10_000, what: 'an edge' });
    controllerUrl = edge.CONTROLLER_URL!;
    expect(edge.GATEWAY_CONTROLLER_TOKEN).toBe(controllerToken);
    // The invoke token, not configured, is made into the database; the controller token, configured, is not.
    const stored = await storedTokens(db.url);
    expect(stored['gateway-controller-token']).toBeUndefined();
    invokeToken = stored['gateway-invoke-token']!;
    expect(invokeToken).toBeTruthy();
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  // Break it catches: the controller API (or the edges) given the invoke token again, as main.ts did
  // (`controllerApi(controller, { token: keys.invokeToken })`): functions could deploy, remove and scale.
  it('answers every route 401 with the invoke token or none, and only the controller token opens it', { timeout: 60_000 }, async () => {
    const routes = await controllerRoutes();
    expect(routes).toContainEqual({ method: 'GET', path: '/controller/state' });
    expect(routes).toContainEqual({ method: 'POST', path: '/controller/functions' });
    expect(routes).toContainEqual({ method: 'DELETE', path: '/controller/functions/:fn' });
    // A function that does not exist: nothing of the app's changes, whoever gets in.
    const call = (route: { method: string; path: string }, authorization?: string) =>
      fetch(`${controllerUrl}${route.path.replaceAll(':fn', 'no-such-function')}`, {
        method: route.method,
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: route.method === 'GET' ? undefined : '[]',
      });
    const refused = async (route: { method: string; path: string }, authorization?: string) => {
      const response = await call(route, authorization);
      const body = (await response.json()) as { error?: string };
      return { route: `${route.method} ${route.path}`, status: response.status, error: body.error };
    };
    for (const route of routes) {
      const name = `${route.method} ${route.path}`;
      for (const authorization of [undefined, `Bearer ${invokeToken}`, invokeToken, `Basic ${Buffer.from(`admin:${invokeToken}`).toString('base64')}`]) {
        expect(await refused(route, authorization)).toEqual({ route: name, status: 401, error: expect.stringContaining('controller token') });
      }
      expect({ route: name, status: (await call(route, `Bearer ${controllerToken}`)).status }).not.toEqual({ route: name, status: 401 });
    }
    // What an edge reads: the state of the app's functions.
    const state = await fetch(`${controllerUrl}/controller/state`, { headers: { authorization: `Bearer ${controllerToken}` } });
    expect(state.status).toBe(200);
    expect(Object.keys(((await state.json()) as { functions: object }).functions)).toContain('vote');
  });

  // Break it catches: the process runtime passing its own environment on to the functions (the
  // token configured as GATEWAY_CONTROLLER_TOKEN then reaches every function).
  it("never puts the controller token in a function's environment", { timeout: 60_000 }, async () => {
    // A vote: the vote function's instance starts, and record-vote's to record it.
    const voted = await fetch(`${app.url}/function/vote`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"vote":"a"}' });
    expect(voted.status).toBe(200);
    const functions = await waitUntil(
      () => {
        const found = environs(app).filter(({ env }) => env.FN_NAME);
        return ['vote', 'record-vote'].every((fn) => found.some(({ env }) => env.FN_NAME === fn)) && found;
      },
      { timeoutMs: 15_000, what: 'the instances of vote and record-vote' },
    );
    // What is read is a function's environment: vote's holds the invoke token, which it declares.
    expect(functions.find(({ env }) => env.FN_NAME === 'vote')!.env.GATEWAY_INVOKE_TOKEN).toBe(invokeToken);
    for (const { env } of functions) {
      expect({ fn: env.FN_NAME, leaked: Object.entries(env).filter(([, value]) => value.includes(controllerToken)) }).toEqual({ fn: env.FN_NAME, leaked: [] });
    }
  });

  // Break it catches: a deploy's secrets not checked (the controller's check of a spec's secrets gone):
  // the deploy then fails for another reason, not naming the secret.
  it('refuses a deploy that declares the controller token, and deploys nothing', async () => {
    const adminToken = readFileSync(join(app.dataDir, 'secrets', 'gateway-admin-token'), 'utf8').trim();
    const manifest = { name: 'peek', main: 'handler.mjs', mode: 'warm', secrets: ['gateway-controller-token'] };
    const deployed = await fetch(`${app.url}/system/functions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
      body: JSON.stringify(manifest),
    });
    expect([400, 403]).toContain(deployed.status);
    expect(await deployed.json()).toEqual({ error: expect.stringContaining('"gateway-controller-token"') });
    const listed = (await (await fetch(`${app.url}/system/functions`)).json()) as Array<{ name: string }>;
    expect(listed.map((f) => f.name)).toContain('vote');
    expect(listed.map((f) => f.name)).not.toContain('peek');
  });
});

// Break it catches: GATEWAY_ONLY_SECRETS without the controller token: a manifest of the app declaring
// it makes it an allowed secret, and the app starts.
it('will not start when a function of the app declares the controller token, and says which', { timeout: 60_000 }, async () => {
  const peek = { name: 'peek', mode: 'warm', timeoutSeconds: 5, maxConcurrency: 4, secrets: ['gateway-controller-token'] } as FunctionManifest;
  const functionsDir = await functionsFolder(repoFunctions, undefined, [{ manifest: peek, main: join(fixtureFunctions, 'handler.mjs') }]);
  const app = await appProcess({ env: { FUNCTIONS_DIR: functionsDir, GATEWAY_WORKERS: '2' } });
  try {
    await expect(app.start()).rejects.toThrow(/exited with 1 during start-up/);
    expect(app.output()).toMatch(/gateway-controller-token\W+ is the gateway's own credential/);
  } finally {
    await app.close();
    await rm(functionsDir, { recursive: true, force: true });
  }
});

// Break it catches: no comparison of the two tokens at start: the invoke token, which functions
// hold, would open the controller API when an operator configures the same value for both.
it('will not start with the controller token the same as the invoke token', { timeout: 60_000 }, async () => {
  const db = await createTestDatabase(process.env.DATABASE_URL!);
  const same = randomBytes(16).toString('hex');
  const app = await appProcess({ env: { DATABASE_URL: db.url, GATEWAY_WORKERS: '2', GATEWAY_INVOKE_TOKEN: same, GATEWAY_CONTROLLER_TOKEN: same } });
  try {
    await expect(app.start()).rejects.toThrow(/exited with 1 during start-up/);
    expect(app.output()).toContain('the secret gateway-controller-token must differ from gateway-invoke-token');
    expect(app.output()).not.toContain(same);
  } finally {
    await app.close();
    await db.drop();
  }
});

// Two processes of their own on one database, as the stack runs them (GATEWAY_ROLE): neither is
// given the controller token; both read the one made into the database.
describe("the controller API's credential, made into the database", () => {
  let db: { url: string; drop(): Promise<void> };
  let controller: AppProcess;
  let edge: AppProcess;
  beforeAll(async () => {
    db = await createTestDatabase(process.env.DATABASE_URL!);
    edge = await appProcess({ env: { DATABASE_URL: db.url, GATEWAY_ROLE: 'edge' } });
    controller = await appProcess({ env: { DATABASE_URL: db.url, GATEWAY_ROLE: 'controller', FUNCTION_GATEWAY_URL: edge.url } });
    await controller.start();
    await edge.start();
  }, 120_000);
  afterAll(async () => {
    await Promise.all([edge, controller].map((p) => p?.close()));
    await db?.drop();
  });

  // Break it catches: processes of a tier each making a controller token of their own (localSecret
  // instead of sharedSecret), or the edge sending another token than the controller checks.
  it('lets the edge reach the controller with it, and refuses the invoke token', { timeout: 60_000 }, async () => {
    const stored = await storedTokens(db.url);
    const controllerToken = stored['gateway-controller-token']!;
    expect(controllerToken).toBeTruthy();
    expect(controllerToken).not.toBe(stored['gateway-invoke-token']);
    // The edge got an instance from the controller: it holds the same token.
    expect((await fetch(`${edge.url}/function/vote`)).status).toBe(200);
    const state = (authorization: string) => fetch(`${controller.url}/controller/state`, { headers: { authorization } });
    expect((await state(`Bearer ${controllerToken}`)).status).toBe(200);
    expect((await state(`Bearer ${stored['gateway-invoke-token']}`)).status).toBe(401);
  });

  // Break it catches: the functions' database roles able to read the platform's tables (tried by
  // hand: GRANT SELECT ON platform_secrets to record-vote's role): the token made there is theirs.
  it("keeps it from the functions' database roles", { timeout: 60_000 }, async () => {
    const voted = await fetch(`${edge.url}/function/vote`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"vote":"b"}' });
    expect(voted.status).toBe(200);
    // The database URLs the functions were given, read from their instances' environment.
    const urls = await waitUntil(
      () => {
        const found = environs(controller).filter(({ env }) => env.FN_NAME);
        if (!found.some(({ env }) => env.FN_NAME === 'record-vote')) return false;
        return [...new Set(found.flatMap(({ env }) => Object.values(env).filter((value) => /^postgres(ql)?:\/\//.test(value))))];
      },
      { timeoutMs: 15_000, what: "record-vote's instance" },
    );
    expect(urls.length).toBeGreaterThan(0);
    for (const url of urls) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const read = await client.query('SELECT value FROM platform_secrets').then(
          (result) => ({ rows: result.rowCount }),
          (error: { code?: string }) => ({ refused: error.code }),
        );
        expect({ role: new URL(url).username, read }).toEqual({ role: new URL(url).username, read: { refused: '42501' } });
      } finally {
        await client.end();
      }
    }
  });
});
