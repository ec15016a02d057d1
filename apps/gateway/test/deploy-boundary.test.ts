import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, startPostgres, waitUntil, type PostgresServer } from '@platform/test-services';
import { loadFunctions, loadManifest, ManifestError, REFUSED_ENV } from '@platform/function-contract/manifest';
import { parseDeployRequest } from '@platform/core/deploy-request';
import { Controller } from '@platform/core/controller/controller';
import { FunctionPool } from '@platform/core/pool';
import { ProcessRuntime } from '@platform/core/runtimes/process';
import { MANAGED_LABEL } from '@platform/core/runtimes/docker';
import { secretEnvName } from '@platform/core/runtimes/function-env';
import { LABELS } from '@platform/core/labels';
import { functionSecretResolver, secretResolver } from '@platform/core/secrets';
import { migratePlatform } from '@platform/core/store/migrate';
import { loadConfig } from '../src/config.js';
import { fixtureFunctions, repoFunctions, startTestGateway, TEST_INVOKE_TOKEN, type TestGateway } from './harness.js';
import { prepareDocker } from './docker-network.js';
import { startEntryPoint } from './entry-point.js';

const token = 'boundary-admin-token';
const temporary: string[] = [];
afterAll(async () => Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true }))));
const tempDir = async (prefix: string) => {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temporary.push(dir);
  return dir;
};
const deploy = (base: string, method: 'POST' | 'PUT', manifest: unknown) =>
  fetch(`${base}/system/functions`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(manifest),
  });
const appManifest = async (name: string) => JSON.parse(await readFile(join(repoFunctions, name, 'function.json'), 'utf8')) as Record<string, unknown>;
/** NODE_OPTIONS that make any Node process starting with it write `marker`. */
const markerOptions = (marker: string) =>
  `--import=data:text/javascript;base64,${Buffer.from(`import{writeFileSync}from'node:fs';writeFileSync(${JSON.stringify(marker)},'ran')`).toString('base64')}`;

describe('the rule on a manifest’s variables', () => {
  // Break it catches: a family of loader or runtime-control variables missing from the rule (REFUSED_ENV).
  it.each([
    'FN_NAME',
    'FN_SOCKET',
    'NODE_OPTIONS',
    'NODE_PATH',
    'LD_PRELOAD',
    'LD_LIBRARY_PATH',
    'DYLD_INSERT_LIBRARIES',
    'PYTHONPATH',
    'PYTHONSTARTUP',
    'PATH',
    'BASH_ENV',
    'ENV',
    'PERL5OPT',
    'PERL5LIB',
    'RUBYOPT',
    'JAVA_TOOL_OPTIONS',
    '_JAVA_OPTIONS',
    'GCONV_PATH',
    'MALLOC_CHECK_',
  ])('refuses %s in a deploy with 400 naming it', (name) => {
    let refused: unknown;
    try {
      parseDeployRequest({ name: 'x', env: { OPTION_A: 'Cats', [name]: 'anything' } });
    } catch (error) {
      refused = error;
    }
    expect(refused).toMatchObject({ status: 400 });
    expect((refused as Error).message).toContain(`field "env.${name}"`);
  });

  // Break it catches: a rule so broad it refuses the app's own variables.
  it('keeps the other variables of a manifest', () => {
    expect(parseDeployRequest({ name: 'x', env: { OPTION_A: 'Cats', OPTION_B: 'Dogs', GATEWAY_URL: 'http://127.0.0.1:1', NODEJS: 'no' } }).env).toEqual({
      OPTION_A: 'Cats',
      OPTION_B: 'Dogs',
      GATEWAY_URL: 'http://127.0.0.1:1',
      NODEJS: 'no',
    });
    expect(REFUSED_ENV).toContain('NODE_*');
  });

  // Break it catches: the rule checked by the deploy route only (a folder's manifest still loading with it).
  it('refuses a folder manifest with such a variable, naming the file and the field', async () => {
    const dir = await tempDir('boundary-manifest-');
    await mkdir(join(dir, 'x'));
    await writeFile(join(dir, 'x', 'function.json'), JSON.stringify({ name: 'x', env: { LD_PRELOAD: '/tmp/evil.so' } }));
    const error = (await loadManifest(join(dir, 'x', 'function.json'), dir).catch((e: unknown) => e)) as ManifestError;
    expect(error).toBeInstanceOf(ManifestError);
    expect(error.field).toBe('env.LD_PRELOAD');
    expect(error.message).toMatch(/^x\/function\.json: field "env\.LD_PRELOAD" LD_PRELOAD controls how code is loaded or run/);
  });
});

describe('the platform’s variables win over a manifest’s', () => {
  // Break it catches: functionEnv applying the manifest's env after the platform's FN_* settings.
  it('gives a function its own name and socket whatever its manifest says', async () => {
    const sleepy = (await loadFunctions(fixtureFunctions)).find((f) => f.name === 'sleepy')!;
    // A manifest kept before the rule existed (the schema refuses these now): built by hand.
    const spec = { ...sleepy, timeoutSeconds: 10, env: { FN_NAME: 'impostor', FN_SOCKET: '/nonexistent/socket', GREETING: 'hi' } };
    const runtime = new ProcessRuntime({ env: {}, secret: () => undefined });
    const controller = await Controller.start(runtime, [spec]);
    const pool = new FunctionPool(spec, controller);
    try {
      const answer = await pool.invoke({ callId: 'own-name', request: { method: 'GET', path: '/', query: {}, headers: {}, body: '' } });
      expect(answer.status).toBe(200);
      const { env } = JSON.parse(answer.body!) as { env: Record<string, string> };
      expect(env.FN_NAME).toBe('sleepy');
      expect(env.FN_SOCKET).not.toBe('/nonexistent/socket');
      expect(env.GREETING).toBe('hi');
    } finally {
      await pool.close();
      await controller.close();
      await runtime.close();
    }
  });
});

describe('deploys to a running gateway', () => {
  let t: TestGateway;
  let marker: string;
  beforeAll(async () => {
    marker = join(await tempDir('boundary-marker-'), 'ran');
    t = await startTestGateway({ options: { auth: { token, user: 'admin' } } });
  });
  afterAll(async () => {
    await t?.close();
  });
  const stored = async (name: string) => (await t.db.query('SELECT manifest FROM platform_functions WHERE name = $1', [name])).rows;

  // Break it catches: no check of the manifest's variables (the update is kept, and the next
  // instance of results starts with NODE_OPTIONS, which writes the marker).
  it('refuses a NODE_OPTIONS deploy with 400 naming it, keeps nothing, and never runs its code', async () => {
    const results = await appManifest('results');
    const answer = await deploy(t.url, 'PUT', { ...results, env: { ...(results.env as object), NODE_OPTIONS: markerOptions(marker) } });
    // The function's next instance starts (a cold start now): the code of the refused deploy is nowhere in it.
    const scores = await fetch(`${t.url}/function/results`);
    expect(scores.status).toBe(200);
    expect(t.gateway.pools.get('results')!.status().coldStarts).toBeGreaterThan(0);
    expect(existsSync(marker)).toBe(false);
    expect(answer.status).toBe(400);
    expect(((await answer.json()) as { error: string }).error).toMatch(/field "env\.NODE_OPTIONS" NODE_OPTIONS controls how code is loaded or run/);
    expect(await stored('results')).toEqual([]);
  });

  // Break it catches: no allow-list at deploy (the function asks for the gateway's own credential, or
  // any environment variable of the gateway by its name).
  it.each([['gateway-admin-token'], ['gateway-controller-token'], ['home'], ['aws-secret-access-key']])(
    'refuses a deploy asking for the secret %s with 403 naming it, keeping nothing',
    async (secret) => {
      // An update of a function that runs here, otherwise as it is.
      const results = await appManifest('results');
      const answer = await deploy(t.url, 'PUT', { ...results, secrets: [...(results.secrets as string[]), secret] });
      expect(answer.status).toBe(403);
      expect(((await answer.json()) as { error: string }).error).toMatch(new RegExp(`^field "secrets": "${secret}" is not allowed here`));
      expect(await stored('results')).toEqual([]);
      expect(t.gateway.pools.get('results')!.spec.secrets).toEqual(results.secrets);
    },
  );

  // Break it catches: an update that leaves `private` out making record-vote public (the schema's default, false).
  it('keeps record-vote private through a PUT that leaves private out; one saying false makes it public', async () => {
    const { private: _private, ...manifest } = await appManifest('record-vote');
    const record = () =>
      fetch(`${t.url}/function/record-vote`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"voterId":"00000000000000fe","vote":"b","votedAt":1}',
      });
    expect((await record()).status).toBe(403);
    expect((await deploy(t.url, 'PUT', { ...manifest, description: 'updated' })).status).toBe(202);
    const outside = await record();
    expect(outside.status).toBe(403);
    expect(await outside.json()).toEqual({ error: 'function "record-vote" is private: only functions of this app may invoke it' });
    expect((await stored('record-vote'))[0].manifest).toMatchObject({ private: true, description: 'updated' });
    // Saying so still works: the deployer may make it public.
    expect((await deploy(t.url, 'PUT', { ...manifest, private: false })).status).toBe(202);
    expect((await record()).status).not.toBe(403);
    expect((await deploy(t.url, 'PUT', { ...manifest, private: true })).status).toBe(202);
    expect((await record()).status).toBe(403);
  });
});

describe('deployed code must really be in the functions folder', () => {
  let t: TestGateway;
  let root: string;
  let markers: string;
  beforeAll(async () => {
    root = await tempDir('boundary-links-');
    markers = join(root, 'ran');
    await mkdir(markers);
    await mkdir(join(root, 'functions'));
    // Code outside the functions folder, reached by links inside it: a folder, and a file. It
    // leaves a marker named after the function it runs as.
    await mkdir(join(root, 'elsewhere'));
    await writeFile(
      join(root, 'elsewhere', 'main.mjs'),
      `import { writeFileSync } from 'node:fs'; import { join } from 'node:path'; writeFileSync(join(${JSON.stringify(markers)}, process.env.FN_NAME), 'ran');\n`,
    );
    await symlink(join(root, 'elsewhere'), join(root, 'functions', 'linked-folder'));
    await mkdir(join(root, 'functions', 'linked-file'));
    await symlink(join(root, 'elsewhere', 'main.mjs'), join(root, 'functions', 'linked-file', 'main.mjs'));
    t = await startTestGateway({ functionsDir: join(root, 'functions'), options: { auth: { token, user: 'admin' } } });
  });
  afterAll(async () => {
    await t?.close();
  });

  // Break it catches: the lexical check alone (no realpath): the links pass it, and the outside code runs on the first call.
  it.each([['linked-folder'], ['linked-file']])('refuses %s, whose main leads out of the folder, with 400', async (name) => {
    const answer = await deploy(t.url, 'POST', { name, main: 'main.mjs', mode: 'oneshot' });
    const call = await fetch(`${t.url}/function/${name}`);
    expect(existsSync(join(markers, name))).toBe(false);
    expect(call.status).toBe(404);
    expect(answer.status).toBe(400);
    expect(((await answer.json()) as { error: string }).error).toBe(
      'field "main": main.mjs is outside the functions folder; the process runtime runs only code inside it',
    );
  });
});

describe('manifests kept before the rules', () => {
  let t: TestGateway | undefined;
  let db: { url: string; drop(): Promise<void> };
  afterAll(async () => {
    await t?.close();
    await db?.drop();
  });

  // Break it catches: kept manifests run as they are at start, unchecked (the stored results starts with NODE_OPTIONS).
  it('leaves out a kept manifest that the rules refuse now; the app’s own function runs instead', async () => {
    const marker = join(await tempDir('boundary-kept-'), 'ran');
    db = await createTestDatabase(process.env.DATABASE_URL!);
    await migratePlatform(db.url);
    // As an earlier version kept it: the whole manifest, defaults included.
    const { dir: _dir, manifestPath: _path, ...results } = (await loadFunctions(repoFunctions)).find((f) => f.name === 'results')!;
    const kept = { ...results, env: { NODE_OPTIONS: markerOptions(marker) }, description: 'kept earlier' };
    const client = new (await import('pg')).default.Client({ connectionString: db.url });
    await client.connect();
    await client.query('INSERT INTO platform_functions (name, manifest) VALUES ($1, $2)', ['results', JSON.stringify(kept)]);
    await client.end();
    t = await startTestGateway({ database: db.url, options: { auth: { token, user: 'admin' } } });
    expect((await fetch(`${t.url}/function/results`)).status).toBe(200);
    expect(existsSync(marker)).toBe(false);
    expect(t.gateway.pools.get('results')!.spec.description).toBe(results.description);
  });
});

describe('the secrets functions may be given', () => {
  // Break it catches: the functions' resolver falling back to the gateway's environment for any name.
  it("resolves only the allowed names, never the gateway's environment by another name", () => {
    const gateway = secretResolver('/nonexistent', { 'cookie-secret': 'cookie' });
    expect(gateway('home')).toBe(process.env.HOME); // the gateway's own reading of its settings
    const functions = functionSecretResolver(gateway, ['cookie-secret']);
    expect(functions('cookie-secret')).toBe('cookie');
    expect(functions('home')).toBeUndefined();
    expect(functions('path')).toBeUndefined();
  });

  // Break it catches: FUNCTION_SECRETS taking the gateway's own tokens like any other name.
  it("refuses the gateway's own tokens in FUNCTION_SECRETS, naming them", () => {
    expect(loadConfig({ FUNCTION_SECRETS: 'database-url, cookie-secret' }).FUNCTION_SECRETS).toEqual(['database-url', 'cookie-secret']);
    expect(loadConfig({}).FUNCTION_SECRETS).toBeUndefined();
    expect(() => loadConfig({ FUNCTION_SECRETS: 'database-url,gateway-admin-token' })).toThrow(
      /FUNCTION_SECRETS: "gateway-admin-token" is the gateway's own credential: no function may be given it/,
    );
    expect(() => loadConfig({ FUNCTION_SECRETS: 'gateway-controller-token' })).toThrow(/"gateway-controller-token" is the gateway's own credential/);
    expect(() => functionSecretResolver(() => 'x', ['gateway-admin-token'])).toThrow(/gateway-admin-token/);
  });

  // Break it catches: an app manifest declaring the admin token making it an allowed secret by default (the start goes on).
  it('does not start when FUNCTION_SECRETS or an app manifest names the admin token', async () => {
    const functionsDir = await tempDir('boundary-app-');
    await mkdir(join(functionsDir, 'greedy'));
    await writeFile(join(functionsDir, 'greedy', 'function.json'), JSON.stringify({ name: 'greedy', secrets: ['gateway-admin-token'] }));
    for (const [env, message] of [
      [{ FUNCTION_SECRETS: 'cookie-secret,gateway-admin-token' }, /FUNCTION_SECRETS: \\?"gateway-admin-token\\?" is the gateway's own credential/],
      [{ FUNCTIONS_DIR: functionsDir }, /the functions' manifests: \\?"gateway-admin-token\\?" is the gateway's own credential/],
    ] as const) {
      const app = await startApp(env);
      expect(await app.exited).toBe(1);
      expect(app.output()).toMatch(message);
      expect(existsSync(join(app.dataDir, 'postgres'))).toBe(false); // stopped before anything started
    }
  });

  // Break it catches: the app's functions not checked against FUNCTION_SECRETS (they fail later, at their first call).
  it('refuses to start the controller when an app function asks for a secret outside the list', async () => {
    const sleepy = (await loadFunctions(fixtureFunctions)).find((f) => f.name === 'sleepy')!;
    const runtime = new ProcessRuntime({ env: {}, secret: () => undefined });
    try {
      await expect(Controller.start(runtime, [{ ...sleepy, secrets: ['api-key'] }], { secrets: ['database-url'] })).rejects.toThrow(
        'function sleepy: field "secrets": "api-key" is not allowed here; allowed: database-url',
      );
    } finally {
      await runtime.close();
    }
  });
});

describe('secrets on the docker runtime', () => {
  let postgres: PostgresServer;
  let t: TestGateway | undefined;
  const docker = new Docker();
  beforeAll(async () => {
    const network = await prepareDocker();
    postgres = await startPostgres({ listen: [network.hostAddress] });
    t = await startTestGateway({ databaseServer: postgres.url, runtime: 'docker', docker: network });
  }, 180_000);
  afterAll(async () => {
    await t?.close();
    await postgres?.stop();
  });

  // Break it catches: secrets handed in the container's Env (functionEnv with includeSecrets on the
  // docker runtime), seen by anyone who may inspect containers; or none handed at all (the votes fail).
  it("gives containers their secrets as files: none in docker inspect's Env, and the functions read them", { timeout: 120_000 }, async () => {
    const url = t!.url;
    // Cold starts of three containers on a busy machine may outlast a call's timeout: warmed up first.
    await waitUntil(async () => (await fetch(`${url}/function/vote`)).status === 200, { timeoutMs: 60_000, what: 'the vote function to start' });
    const vote = await fetch(`${url}/function/vote`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"vote":"a"}' });
    // The vote function signs its cookie (cookie-secret) and queues the vote for record-vote (gateway-invoke-token).
    expect(vote.status).toBe(200);
    expect(vote.headers.get('set-cookie')).toMatch(/^voter_id=/);
    // record-vote and results reach the database with their roles' URLs (votes-writer-url, votes-reader-url).
    await waitUntil(async () => ((await (await fetch(`${url}/function/results`)).json()) as { a: number }).a === 1, {
      timeoutMs: 30_000,
      what: 'the vote recorded and counted',
    });
    const owner = `test-${new URL(url).port}`;
    const containers = await docker.listContainers({ filters: { label: [`${MANAGED_LABEL}=${owner}`] } });
    const inspected = await Promise.all(containers.map((c) => docker.getContainer(c.Id).inspect()));
    expect([...new Set(inspected.map((info) => info.Config.Labels[LABELS.function]))].sort()).toEqual(['record-vote', 'results', 'vote']);
    const database = new URL(t!.databaseUrl);
    const values = ['test-cookie-secret', TEST_INVOKE_TOKEN, database.pathname.slice(1), database.password].filter(Boolean);
    const volumes: string[] = [];
    for (const info of inspected) {
      const env = info.Config.Env.join('\n');
      for (const value of values) expect(env).not.toContain(value);
      const declared = /^FN_SECRETS=(.*)$/m.exec(env)![1]!.split(',').filter(Boolean);
      expect(declared.length).toBeGreaterThan(0);
      for (const name of declared) expect(env).not.toMatch(new RegExp(`^${secretEnvName(name)}=`, 'm'));
      const mount = info.Mounts.find((m) => m.Destination === '/run/secrets');
      expect(mount).toMatchObject({ Type: 'volume' });
      volumes.push(mount!.Name!);
    }
    // Removed with their containers.
    await t!.close();
    t = undefined;
    const left = async () => (await docker.listVolumes()).Volumes.filter((v) => volumes.includes(v.Name));
    await waitUntil(async () => (await left()).length === 0, { timeoutMs: 15_000, what: 'the secrets volumes to go with their containers' });
  });
});

/** The app's entry point run as `npm start` does, with the given settings (it stops before its database). */
const startApp = async (env: Record<string, string>) => startEntryPoint(env, await tempDir('boundary-main-'));
