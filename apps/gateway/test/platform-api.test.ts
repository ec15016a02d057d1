import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io as connect, type Socket } from 'socket.io-client';
import { createTestDatabase, waitUntil } from '@platform/test-services';
import { MemberRegistry } from '@platform/core/cluster/members';
import { fixtureFunctions, startTestGateway, type TestGateway } from './harness.js';
import { check, documentedOperations, exercised } from './openapi-check.js';
import type { PlatformSnapshot } from '@platform/protocol';

const token = 'test-admin-token';
const bearer = { authorization: `Bearer ${token}` };
const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const json = (body: unknown) => ({ 'content-type': 'application/json', body: JSON.stringify(body) });

/** Checks an error answer against the document, then that it is exactly this status and error text. */
async function refused(method: string, template: string, response: Response, status: number, error: string | RegExp) {
  expect(response.status).toBe(status);
  const body = (await check(method, template, response)) as { error: string };
  if (typeof error === 'string') expect(body).toEqual({ error });
  else expect(body.error).toMatch(error);
}

/** Waits until the queue is empty and no call of any function runs or waits: nothing more will happen by itself. */
async function settled(t: TestGateway): Promise<void> {
  await waitUntil(
    async () => {
      const functions = (await (await fetch(`${t.url}/system/functions`)).json()) as Array<{ inFlight: number; queued: number }>;
      return (await t.queue.depth()) === 0 && functions.every((f) => f.inFlight === 0 && f.queued === 0);
    },
    { timeoutMs: 10_000, intervalMs: 50, what: 'an empty queue and no call in flight' },
  );
}

describe('the platform API', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({
      functionsDir: fixtureFunctions,
      options: { auth: { token, user: 'admin' }, callResultSeconds: 60, publicUrl: 'http://vote.example.test:8080/' },
    });
  });
  afterAll(async () => t.close());

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${t.url}${path}`, { headers });
  const scale = (name: string, body: unknown, headers: Record<string, string> = bearer) => {
    const { body: text, ...type } = json(body);
    return fetch(`${t.url}/system/scale-function/${name}`, { method: 'POST', headers: { ...type, ...headers }, body: text });
  };

  it('answers every /system route as its OpenAPI document says', async () => {
    const doc = (await check('GET', '/system/openapi.json', await get('/system/openapi.json'))) as { openapi: string };
    expect(doc.openapi).toBe('3.1.0');
    await check('GET', '/healthz', await get('/healthz'));
    await check('GET', '/system/info', await get('/system/info'));
    const invite = (await check('GET', '/system/public-url', await get('/system/public-url'))) as { url: string; qr: string };
    expect(invite.url).toBe('http://vote.example.test:8080/');
    expect(invite.qr).toMatch(/^<svg [^>]*viewBox="0 0 \d+ \d+"[\s\S]*<path[\s\S]*<\/svg>\s*$/);
    const list = (await check('GET', '/system/functions', await get('/system/functions'))) as Array<{ name: string }>;
    expect(list.map((f) => f.name)).toEqual(['crashy', 'once', 'sleepy']);
    expect(await check('GET', '/system/function/{name}', await get('/system/function/sleepy'))).toMatchObject({ name: 'sleepy', replicas: 0 });
    await refused('GET', '/system/function/{name}', await get('/system/function/nope'), 404, 'function "nope" not found');
    await refused(
      'GET',
      '/system/function/{name}',
      await get('/system/function/Bad_Name'),
      400,
      'invalid function name: use lower case letters, digits and dashes',
    );
    await refused('GET', '/system/calls/{callId}', await get('/system/calls/unknown'), 404, 'call "unknown" is unknown, or kept no longer');
    const metrics = await get('/metrics');
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    await check('GET', '/metrics', metrics);
  });

  // Break it catches: the scale route taking replicas given as a string ("two", "1").
  it('scales a function up and down within its limits, and refuses anything else with its reason, like OpenFaaS', async () => {
    const up = await scale('sleepy', { serviceName: 'sleepy', replicas: 2 });
    expect(await check('POST', '/system/scale-function/{name}', up)).toEqual({ serviceName: 'sleepy', replicas: 2 });
    const status = (await (await get('/system/function/sleepy')).json()) as { replicas: number; availableReplicas: number; instances: string[] };
    expect(status).toMatchObject({ replicas: 2, availableReplicas: 2 });
    expect(status.instances).toHaveLength(2);
    expect(await check('POST', '/system/scale-function/{name}', await scale('sleepy', { replicas: 0 }))).toEqual({ serviceName: 'sleepy', replicas: 0 });
    expect(((await (await get('/system/function/sleepy')).json()) as { replicas: number }).replicas).toBe(0);

    // Errors: beyond maxInstances, not a whole number, wrong name in the body, not JSON, unknown function, one-shot.
    const route = '/system/scale-function/{name}';
    const range = 'replicas must be an integer from 0 to 2 (maxInstances of sleepy)';
    for (const replicas of [3, -1, 1.5]) await refused('POST', route, await scale('sleepy', { replicas }), 400, range);
    await refused(
      'POST',
      route,
      await scale('sleepy', { serviceName: 'crashy', replicas: 1 }),
      400,
      'serviceName "crashy" does not match the path\'s function "sleepy"',
    );
    for (const replicas of ['two', '1', null]) await refused('POST', route, await scale('sleepy', { replicas }), 400, 'replicas must be a number');
    await refused('POST', route, await scale('sleepy', [2]), 400, 'send a JSON object');
    await refused('POST', route, await scale('once', { replicas: 1 }), 400, 'function once runs one-shot: it has no warm instances to scale');
    expect(await check('POST', route, await scale('once', { replicas: 0 }))).toEqual({ serviceName: 'once', replicas: 0 });
    await refused('POST', route, await scale('nope', { replicas: 1 }), 404, 'function "nope" not found');
    const text = await fetch(`${t.url}/system/scale-function/sleepy`, { method: 'POST', headers: { ...bearer, 'content-type': 'text/plain' }, body: '2' });
    await refused('POST', route, text, 415, 'send JSON: {"serviceName": "<name>", "replicas": <n>}');
    const broken = await fetch(`${t.url}/system/scale-function/sleepy`, {
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/json' },
      body: '{',
    });
    await refused('POST', route, broken, 400, /JSON/);
    // None of them started anything (a scale starts its instances before it answers).
    for (const name of ['sleepy', 'crashy', 'once']) {
      expect(((await (await get(`/system/function/${name}`)).json()) as { replicas: number }).replicas, name).toBe(0);
    }
  });

  it("shows the last lines of a function's instances at /system/logs, one-shot and warm", async () => {
    await fetch(`${t.url}/function/once?log=from-once`);
    await fetch(`${t.url}/function/sleepy?log=from-sleepy`);
    const lines = async (query: string) => {
      const response = await get(`/system/logs?${query}`, bearer);
      expect(response.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
      const text = (await check('GET', '/system/logs', response)) as string;
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { name: string; instance: string; timestamp: string; text: string });
    };
    await waitUntil(async () => (await lines('name=sleepy')).some((l) => l.text.includes('from-sleepy')), { what: "the warm instance's line" });
    const once = await lines('name=once&tail=5');
    expect(once.length).toBeGreaterThan(0);
    expect(once.length).toBeLessThanOrEqual(5);
    const marked = once.find((l) => l.text.includes('from-once'))!;
    expect(marked).toMatchObject({ name: 'once', instance: expect.stringMatching(/^once-/) });
    expect(Date.parse(marked.timestamp)).not.toBeNaN();
    // One function's lines only, never another's.
    await fetch(`${t.url}/function/crashy?log=from-crashy`);
    await waitUntil(async () => (await lines('name=crashy')).some((l) => l.text.includes('from-crashy')), { what: "crashy's line" });
    const crashy = await lines('name=crashy');
    expect(crashy.filter((l) => l.name !== 'crashy' || !l.instance.startsWith('crashy-') || /from-(once|sleepy)/.test(l.text))).toEqual([]);
    await refused('GET', '/system/logs', await get('/system/logs?name=nope', bearer), 404, 'function "nope" not found');
    await refused('GET', '/system/logs', await get('/system/logs?', bearer), 400, 'name the function: /system/logs?name=<function>');
    for (const query of ['name=once&tail=0', 'name=once&tail=x', 'name=once&tail=5000', 'name=once&tail=1.5']) {
      await refused('GET', '/system/logs', await get(`/system/logs?${query}`, bearer), 400, 'tail must be an integer from 1 to 1000');
    }
    // As the next tests expect them: no warm instance.
    for (const name of ['sleepy', 'crashy']) expect((await scale(name, { replicas: 0 })).status).toBe(200);
  });

  // Break it catches: /system/logs behind the read-only check (public by default) instead of the admin's.
  it('keeps logs to the admin although status reads are public: functions may log users’ data', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }] as Array<Record<string, string>>) {
      const refused = await get('/system/logs?name=once', headers);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBeTruthy();
      expect(((await check('GET', '/system/logs', refused)) as { error: string }).error).toMatch(/^(credentials required|wrong credentials): /);
    }
    expect((await get('/system/functions')).status).toBe(200);
  });

  // Break it catches: basic auth taking the admin token with any user name.
  it('refuses scaling without the right credentials: 401 with WWW-Authenticate', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, basic('admin', 'wrong'), basic('root', token), { authorization: 'Token x' }] as Array<
      Record<string, string>
    >) {
      const answer = await scale('sleepy', { replicas: 1 }, headers);
      expect(answer.headers.get('www-authenticate')).toMatch(/Bearer realm="gateway", Basic realm="gateway"/);
      const problem = headers.authorization ? 'wrong credentials' : 'credentials required';
      await refused('POST', '/system/scale-function/{name}', answer, 401, `${problem}: use a bearer token or basic auth (the gateway admin token)`);
    }
    expect(((await (await get('/system/function/sleepy')).json()) as { replicas: number }).replicas).toBe(0);
    const ok = await scale('sleepy', { replicas: 1 }, basic('admin', token));
    expect(ok.status).toBe(200);
    // An instance started by a scale request stops after idleSeconds (1 s) like any other.
    await waitUntil(async () => ((await (await get('/system/function/sleepy')).json()) as { replicas: number }).replicas === 0, {
      timeoutMs: 5_000,
      what: 'the scaled instance to stop when idle',
    });
  });

  it('invokes functions and queues calls as documented, and keeps async calls’ status and result', async () => {
    const sync = await fetch(`${t.url}/function/sleepy/a/b?x=1`, { method: 'POST', body: 'hi' });
    expect(sync.headers.get('x-call-id')).toBeTruthy();
    expect(sync.status).toBe(200);
    expect(JSON.parse((await check('POST', '/function/{name}', sync)) as string)).toMatchObject({ path: '/a/b', body: 'hi' });
    const once = await get('/function/once');
    expect(once.status).toBe(200);
    expect(JSON.parse((await check('GET', '/function/{name}', once)) as string)).toMatchObject({ env: { GREETING: 'hello' } });
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      const answer = await fetch(`${t.url}/function/sleepy`, { method, ...(method === 'DELETE' ? {} : { body: 'x' }) });
      expect(answer.status, method).toBe(200);
      await check(method, '/function/{name}', answer);
    }
    await refused('GET', '/function/{name}', await get('/function/nope'), 404, 'function "nope" not found');
    await refused('GET', '/function/{name}', await get('/function/sleepy?sleep=1500'), 504, 'function sleepy did not answer within 1 s');
    await refused(
      'POST',
      '/function/{name}',
      await fetch(`${t.url}/function/sleepy`, { method: 'POST', body: 'x'.repeat(20_000) }),
      413,
      'request body is too large',
    );

    const accepted = await fetch(`${t.url}/async-function/sleepy/later`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'queued body' });
    const { callId } = (await check('POST', '/async-function/{name}', accepted)) as { callId: string };
    expect(accepted.headers.get('x-call-id')).toBe(callId);
    let call: { status: string; result?: { status: number; body: string } } = { status: '' };
    await waitUntil(
      async () => {
        call = (await check('GET', '/system/calls/{callId}', await get(`/system/calls/${callId}`))) as typeof call;
        return call.status === 'succeeded';
      },
      { timeoutMs: 10_000, what: 'the async call to succeed' },
    );
    expect(call).toMatchObject({ function: 'sleepy', attempts: 1, result: { status: 200 } });
    expect(JSON.parse(call.result!.body)).toMatchObject({ path: '/later', body: 'queued body' });
  });

  // Break it catches: queueing an async call before checking its X-Callback-Url.
  it('refuses async calls to unknown functions or with a callback it may not send, and queues nothing', async () => {
    const invocations = async () => ((await (await get('/system/function/sleepy')).json()) as { invocationCount: number }).invocationCount;
    const before = await invocations();
    const route = '/async-function/{name}';
    const queue = (name: string, callback?: string) =>
      fetch(`${t.url}/async-function/${name}`, { method: 'POST', headers: callback === undefined ? {} : { 'x-callback-url': callback } });
    await refused('POST', route, await queue('nope'), 404, 'function "nope" not found');
    await refused('POST', route, await queue('sleepy', 'ftp://x'), 400, 'X-Callback-Url must be an http or https URL');
    await refused('POST', route, await queue('sleepy', 'not a url'), 400, 'X-Callback-Url is not a valid URL');
    await refused(
      'POST',
      route,
      await queue('sleepy', 'http://127.0.0.1:9/'),
      400,
      'X-Callback-Url points to 127.0.0.1, a loopback address: callbacks may only go to public addresses or to hosts in CALLBACK_ALLOWED_HOSTS',
    );
    // Once the queue is empty and no call runs or waits, nothing more can run: sleepy ran no more.
    await settled(t);
    expect(await invocations()).toBe(before);
  });

  // Break it catches: /system/gateways not mounted by createGateway, or answering other fields than its document says.
  it("lists the tier's members at /system/gateways as documented; 501 on a gateway without a member list", async () => {
    await refused('GET', '/system/gateways', await get('/system/gateways'), 501, "this gateway keeps no list of the tier's members");
    const database = await createTestDatabase(process.env.DATABASE_URL!);
    const members = new MemberRegistry({ database: database.url });
    const edge = await startTestGateway({ functionsDir: fixtureFunctions, database: database.url, options: { members } });
    try {
      const { id } = await members.join({ role: 'edge', url: edge.url, inFlight: () => 0 });
      const list = await check('GET', '/system/gateways', await fetch(`${edge.url}/system/gateways`));
      expect(list).toEqual([expect.objectContaining({ id, role: 'edge', leader: false, inFlight: 0 })]);
    } finally {
      await edge.close();
      await members.close();
      await database.drop();
    }
  });

  // Break it catches: deploys open to anyone, a bad manifest half-applied, an image outside the
  // allowed ones run, a removed function still answered, or answers other than the document says.
  it('deploys, updates and removes functions as OpenFaaS does, admin only, refusing bad ones with the field at fault and changing nothing', async () => {
    const deploy = (method: 'POST' | 'PUT' | 'DELETE', body: unknown, headers: Record<string, string> = bearer) => {
      const { body: text, ...type } = json(body);
      return fetch(`${t.url}/system/functions`, { method, headers: { ...type, ...headers }, body: text });
    };
    const names = async () => ((await (await get('/system/functions')).json()) as Array<{ name: string }>).map((f) => f.name);
    const crashy = {
      name: 'crashy',
      main: '../handler.mjs',
      image: 'voting/fn-crashy:latest',
      mode: 'warm',
      timeoutSeconds: 2,
      maxConcurrency: 4,
      maxInstances: 1,
    };
    const route = '/system/functions';

    await refused('DELETE', route, await deploy('DELETE', { functionName: 'crashy' }, {}), 401, /^credentials required/);
    await refused('DELETE', route, await deploy('DELETE', { functionName: 'nothing-here' }), 404, 'function "nothing-here" not found');
    await refused('DELETE', route, await deploy('DELETE', {}), 400, 'field "functionName" is missing: send {"functionName": "<name>"}');
    expect(await check('DELETE', route, await deploy('DELETE', { functionName: 'crashy' }))).toEqual({ functionName: 'crashy' });
    expect(await names()).toEqual(['once', 'sleepy']);
    expect((await fetch(`${t.url}/function/crashy`)).status).toBe(404);

    await refused('POST', route, await deploy('POST', crashy, {}), 401, /^credentials required/);
    await refused('POST', route, await deploy('POST', { ...crashy, maxInstances: 0 }), 400, /^field "maxInstances" /);
    await refused('POST', route, await deploy('POST', { ...crashy, replicas: 3 }), 400, /^field "replicas" is not a manifest field/);
    await refused('POST', route, await deploy('POST', { ...crashy, timeoutSeconds: 600 }), 400, /^field "timeoutSeconds" must be at most 29 here/);
    await refused('POST', route, await deploy('POST', { ...crashy, main: 'missing.mjs' }), 400, /^field "main": .*missing\.mjs not found/);
    await refused(
      'POST',
      route,
      await deploy('POST', { ...crashy, main: '../../../../../../../../bin/sh' }),
      400,
      /^field "main": .* is outside the functions folder/,
    );
    await refused(
      'POST',
      route,
      await deploy('POST', { ...crashy, image: 'docker.io/library/alpine:3' }),
      403,
      /^field "image": "docker.io\/library\/alpine:3" is not allowed here; allowed: voting\/fn-\*$/,
    );
    await refused(
      'POST',
      route,
      await fetch(`${t.url}${route}`, { method: 'POST', headers: bearer, body: 'name=crashy' }),
      415,
      'send JSON: a function manifest',
    );
    await refused('PUT', route, await deploy('PUT', crashy), 404, 'function "crashy" not found: deploy it with POST /system/functions');
    expect(await names()).toEqual(['once', 'sleepy']);

    // OpenFaaS's names for the same fields.
    const { name: _name, ...rest } = crashy;
    const deployed = await deploy('POST', {
      ...rest,
      service: 'crashy',
      envVars: { GREETING: 'hi' },
      limits: { memory: '96Mi' },
      labels: { team: 'workshop' },
    });
    expect(deployed.status).toBe(202);
    expect(await check('POST', route, deployed)).toMatchObject({
      name: 'crashy',
      image: 'voting/fn-crashy:latest',
      limits: { memory: '96Mi' },
      labels: expect.objectContaining({ team: 'workshop' }),
      maxConcurrency: 4,
    });
    expect((await fetch(`${t.url}/function/crashy`)).status).toBe(200);
    await refused('POST', route, await deploy('POST', crashy), 409, 'function "crashy" exists: change it with PUT /system/functions');

    const updated = await deploy('PUT', { ...crashy, maxConcurrency: 8 });
    expect(await check('PUT', route, updated)).toMatchObject({ name: 'crashy', maxConcurrency: 8 });
    await refused('PUT', route, await deploy('PUT', { ...crashy, mode: 'sometimes' }), 400, /^field "mode" /);
    expect((await fetch(`${t.url}/function/crashy`)).status).toBe(200);
    const timeline = t.gateway.platform
      .snapshot()
      .timeline.filter((e) => e.function === 'crashy')
      .map((e) => e.kind);
    expect(timeline).toEqual(expect.arrayContaining(['removed', 'deployed', 'updated']));
    // As it was, with no instance left running, for the tests after this one.
    expect((await deploy('PUT', { ...crashy, image: 'voting/fn-crashy:latest' })).status).toBe(202);
    await waitUntil(async () => t.gateway.pools.get('crashy')!.status().replicas === 0, { timeoutMs: 10_000, what: "crashy's old instances to stop" });
  });

  it('exercised every operation of the document', () => {
    expect(documentedOperations().filter((op) => !exercised.has(op))).toEqual([]);
  });

  it('counts invocations, durations, cold starts and replicas in /metrics', async () => {
    const metrics = async () => (await get('/metrics')).text();
    const value = (text: string, series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line ? Number(line.split(' ').pop()) : 0;
    };
    const before = await metrics();
    const ok = 'gateway_function_invocation_total{function_name="crashy",code="200"}';
    const failed = 'gateway_function_invocation_total{function_name="crashy",code="502"}';
    const count = 'gateway_functions_seconds_count{function_name="crashy",code="200"}';
    const cold = 'gateway_function_cold_starts_total{function_name="crashy"}';
    for (let i = 0; i < 3; i++) expect((await get('/function/crashy')).status).toBe(200);
    expect((await get('/function/crashy?exit')).status).toBe(502);
    const after = await metrics();
    expect(value(after, ok) - value(before, ok)).toBe(3);
    expect(value(after, failed) - value(before, failed)).toBe(1);
    expect(value(after, count) - value(before, count)).toBe(3);
    expect(value(after, cold) - value(before, cold)).toBe(1);
    expect(after).toMatch(/^gateway_service_count\{function_name="sleepy"\} \d+$/m);
    expect(after).toMatch(/^gateway_function_in_flight\{function_name="crashy"\} 0$/m);
    expect(after).toMatch(/^gateway_queue_depth \d+$/m);
    expect(after).toMatch(/^process_cpu_seconds_total /m);
    expect(after).toMatch(/^gateway_functions_seconds_bucket\{le="0.5",function_name="crashy",code="200"\} \d+$/m);
  });
});

describe('read-only status made private', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({
      functionsDir: fixtureFunctions,
      options: { auth: { token, readPublic: false }, publicUrl: 'http://vote.example.test:8080/' },
    });
  });
  afterAll(async () => t.close());

  // Break it catches: /metrics served without the read check.
  it('needs credentials for /system reads, /metrics and the live data; not for invocation, health or the document', async () => {
    // With the token each answers as it would to anyone when reads are public (no call "x" is known).
    for (const [path, status] of [
      ['/system/functions', 200],
      ['/system/function/sleepy', 200],
      ['/system/calls/x', 404],
      ['/system/logs?name=once', 200],
      ['/metrics', 200],
    ] as const) {
      const refused = await fetch(`${t.url}${path}`);
      expect(refused.status, path).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBeTruthy();
      expect(((await refused.json()) as { error: string }).error).toMatch(/credentials required/);
      expect((await fetch(`${t.url}${path}`, { headers: bearer })).status, path).toBe(status);
    }
    for (const path of ['/function/sleepy', '/healthz', '/system/info', '/system/openapi.json', '/system/public-url'])
      expect((await fetch(`${t.url}${path}`)).status, path).toBe(200);

    const refused = connect(`${t.url}/system`, { forceNew: true, transports: ['websocket'] });
    const error = await new Promise<Error>((resolve) => refused.once('connect_error', resolve));
    expect(error.message).toBe('unauthorized');
    refused.close();
    const allowed = connect(`${t.url}/system`, { forceNew: true, transports: ['websocket'], auth: { token } });
    const snapshot = await new Promise<PlatformSnapshot>((resolve) => allowed.once('snapshot', resolve));
    expect(snapshot.functions.map((f) => f.name)).toEqual(['crashy', 'once', 'sleepy']);
    allowed.close();
  });
});

describe('platform events for the dashboard', () => {
  let t: TestGateway;
  let socket: Socket | undefined;
  let adminSocket: Socket | undefined;
  beforeAll(async () => {
    t = await startTestGateway({ functionsDir: fixtureFunctions, options: { auth: { token } } });
  });
  afterAll(async () => {
    socket?.close();
    adminSocket?.close();
    await t.close();
  });

  it('answers 404 at /system/public-url when no public URL is configured', async () => {
    await refused('GET', '/system/public-url', await fetch(`${t.url}/system/public-url`), 404, 'no public URL is configured');
  });

  // Break it catches: the public snapshot carrying the words of a function's errors.
  it('sends a snapshot on connect, then shows an instance start on a call and stop after the idle time', async () => {
    socket = connect(`${t.url}/system`, { forceNew: true, transports: ['websocket'] });
    let last: PlatformSnapshot | undefined;
    socket.on('snapshot', (s: PlatformSnapshot) => (last = s));
    await waitUntil(() => last !== undefined, { timeoutMs: 5_000, what: 'a snapshot on connect' });
    const sleepy = () => last!.functions.find((f) => f.name === 'sleepy')!;
    expect(sleepy().instances).toEqual([]);

    const served = (await (await fetch(`${t.url}/function/sleepy`)).json()) as { instance: string; pid: number };
    await waitUntil(() => sleepy().instances.length === 1, { timeoutMs: 3_000, what: 'the instance to show' });
    expect(sleepy().instances[0]).toMatchObject({ id: served.instance, pid: served.pid, reason: 'call' });
    expect(sleepy().instances[0]!.coldStartMs).toBeGreaterThan(0);
    expect(last!.timeline[0]).toMatchObject({ function: 'sleepy', kind: 'started', instance: served.instance });

    // sleepy's idleSeconds is 1: the reaper stops it and the dashboard hears of it.
    await waitUntil(() => sleepy().instances.length === 0, { timeoutMs: 5_000, what: 'the idle instance to go' });
    expect(last!.timeline[0]).toMatchObject({ function: 'sleepy', kind: 'stopped', instance: served.instance, detail: 'idle' });
    expect(sleepy().invocationCount).toBe(1);
    expect(sleepy().latencyMs?.p50).toBeGreaterThan(0);

    adminSocket = connect(`${t.url}/system`, { forceNew: true, transports: ['websocket'], auth: { token } });
    let adminLast: PlatformSnapshot | undefined;
    adminSocket.on('snapshot', (s: PlatformSnapshot) => (adminLast = s));
    await waitUntil(() => adminLast !== undefined, { timeoutMs: 5_000, what: "the admin's snapshot" });
    expect((await fetch(`${t.url}/function/sleepy?sleep=1500`)).status).toBe(504);
    await waitUntil(() => sleepy().lastErrors.length === 1, { timeoutMs: 3_000, what: 'the error to show' });
    // Everyone sees that it failed; only the admin sees the words, which may carry users' data.
    expect(sleepy().lastErrors[0]).toEqual({ at: expect.any(Number), status: 504 });
    await waitUntil(() => adminLast!.functions.find((f) => f.name === 'sleepy')!.lastErrors.length === 1, { timeoutMs: 3_000, what: "the admin's error" });
    expect(adminLast!.functions.find((f) => f.name === 'sleepy')!.lastErrors[0]).toMatchObject({
      status: 504,
      message: expect.stringMatching(/did not answer within 1 s/),
    });
  });

  // Break it catches: /healthz answering 200 before the workers and channels run (or while stopping) lets a
  // healthcheck or a supervisor send traffic to a gateway that cannot yet serve it.
  it('answers /healthz 503 until the gateway has started, and again once it stops', async () => {
    const late = await startTestGateway({ functionsDir: fixtureFunctions, start: false });
    try {
      const before = await fetch(`${late.url}/healthz`);
      expect(before.status).toBe(503);
      expect(await check('GET', '/healthz', before)).toMatchObject({ status: 'starting' });
      await late.gateway.start();
      const ready = await fetch(`${late.url}/healthz`);
      expect(await check('GET', '/healthz', ready)).toMatchObject({ status: 'ok' });
      const stopping = late.gateway.close();
      expect((await fetch(`${late.url}/healthz`)).status).toBe(503);
      await stopping;
    } finally {
      await late.close();
    }
  });
});
