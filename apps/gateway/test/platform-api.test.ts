import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io as connect, type Socket } from 'socket.io-client';
import { waitUntil } from '@voting/test-services';
import { fixtureFunctions, startTestGateway, type TestGateway } from './harness.js';
import { check, documentedOperations, exercised } from './openapi-check.js';
import type { PlatformSnapshot } from '@voting/platform-protocol';

const token = 'test-admin-token';
const bearer = { authorization: `Bearer ${token}` };
const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const json = (body: unknown) => ({ 'content-type': 'application/json', body: JSON.stringify(body) });

describe('the platform API', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ functionsDir: fixtureFunctions, options: { auth: { token, user: 'admin' }, callResultSeconds: 60 } });
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
    const list = (await check('GET', '/system/functions', await get('/system/functions'))) as Array<{ name: string }>;
    expect(list.map((f) => f.name)).toEqual(['crashy', 'once', 'sleepy']);
    expect(await check('GET', '/system/function/{name}', await get('/system/function/sleepy'))).toMatchObject({ name: 'sleepy', replicas: 0 });
    expect(await check('GET', '/system/function/{name}', await get('/system/function/nope'))).toEqual({ error: 'function "nope" not found' });
    await check('GET', '/system/function/{name}', await get('/system/function/Bad_Name'));
    expect(await check('GET', '/system/calls/{callId}', await get('/system/calls/unknown'))).toMatchObject({ error: expect.stringMatching(/unknown/) });
    const metrics = await get('/metrics');
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    await check('GET', '/metrics', metrics);
  });

  it('scales a function up and down within its limits, admin only, like OpenFaaS', async () => {
    const up = await scale('sleepy', { serviceName: 'sleepy', replicas: 2 });
    expect(await check('POST', '/system/scale-function/{name}', up)).toEqual({ serviceName: 'sleepy', replicas: 2 });
    const status = (await (await get('/system/function/sleepy')).json()) as { replicas: number; availableReplicas: number; instances: string[] };
    expect(status).toMatchObject({ replicas: 2, availableReplicas: 2 });
    expect(status.instances).toHaveLength(2);
    expect(await check('POST', '/system/scale-function/{name}', await scale('sleepy', { replicas: 0 }))).toEqual({ serviceName: 'sleepy', replicas: 0 });
    expect(((await (await get('/system/function/sleepy')).json()) as { replicas: number }).replicas).toBe(0);

    // Errors: beyond maxInstances, wrong name in the body, not JSON, unknown function, one-shot.
    expect(((await check('POST', '/system/scale-function/{name}', await scale('sleepy', { replicas: 3 }))) as { error: string }).error).toMatch(/0 to 2/);
    await check('POST', '/system/scale-function/{name}', await scale('sleepy', { serviceName: 'crashy', replicas: 1 }));
    await check('POST', '/system/scale-function/{name}', await scale('sleepy', { replicas: 'two' }));
    await check('POST', '/system/scale-function/{name}', await scale('once', { replicas: 1 }));
    expect((await scale('nope', { replicas: 1 })).status).toBe(404);
    const text = await fetch(`${t.url}/system/scale-function/sleepy`, { method: 'POST', headers: { ...bearer, 'content-type': 'text/plain' }, body: '2' });
    expect(text.status).toBe(415);
    await check('POST', '/system/scale-function/{name}', text);
    const broken = await fetch(`${t.url}/system/scale-function/sleepy`, { method: 'POST', headers: { ...bearer, 'content-type': 'application/json' }, body: '{' });
    expect(broken.status).toBe(400);
    await check('POST', '/system/scale-function/{name}', broken);
  });

  it("shows the last lines of a function's instances at /system/logs, one-shot and warm", async () => {
    await fetch(`${t.url}/function/once?log=from-once`);
    await fetch(`${t.url}/function/sleepy?log=from-sleepy`);
    const lines = async (query: string) => {
      const response = await get(`/system/logs?${query}`, bearer);
      expect(response.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
      const text = (await check('GET', '/system/logs', response)) as string;
      return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { name: string; instance: string; timestamp: string; text: string });
    };
    await waitUntil(async () => (await lines('name=sleepy')).some((l) => l.text.includes('from-sleepy')), { what: "the warm instance's line" });
    const once = await lines('name=once&tail=5');
    expect(once.length).toBeGreaterThan(0);
    expect(once.length).toBeLessThanOrEqual(5);
    const marked = once.find((l) => l.text.includes('from-once'))!;
    expect(marked).toMatchObject({ name: 'once', instance: expect.stringMatching(/^once-/) });
    expect(Date.parse(marked.timestamp)).not.toBeNaN();
    expect((await lines('name=crashy')).every((l) => l.name === 'crashy')).toBe(true);
    expect((await get('/system/logs?name=nope', bearer)).status).toBe(404);
    await check('GET', '/system/logs', await get('/system/logs?name=nope', bearer));
    for (const query of ['', 'name=once&tail=0', 'name=once&tail=x', 'name=once&tail=5000']) {
      const bad = await get(`/system/logs?${query}`, bearer);
      expect(bad.status).toBe(400);
      await check('GET', '/system/logs', bad);
    }
    expect((await scale('sleepy', { replicas: 0 })).status).toBe(200); // as the next tests expect it
  });

  it('keeps logs to the admin although status reads are public: functions may log users’ data', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }] as Array<Record<string, string>>) {
      const refused = await get('/system/logs?name=once', headers);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBeTruthy();
      expect(((await check('GET', '/system/logs', refused)) as { error: string }).error).toMatch(/^(credentials required|wrong credentials): /);
    }
    expect((await get('/system/functions')).status).toBe(200);
  });

  it('refuses scaling without the right credentials: 401 with WWW-Authenticate', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, basic('admin', 'wrong'), basic('root', token), { authorization: 'Token x' }]) {
      const refused = await scale('sleepy', { replicas: 1 }, headers);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toMatch(/Bearer realm="gateway", Basic realm="gateway"/);
      await check('POST', '/system/scale-function/{name}', refused);
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
    expect(await check('POST', '/function/{name}', sync)).toBeTypeOf('string');
    await check('GET', '/function/{name}', await get('/function/once'));
    await check('PUT', '/function/{name}', await fetch(`${t.url}/function/sleepy`, { method: 'PUT', body: 'x' }));
    await check('PATCH', '/function/{name}', await fetch(`${t.url}/function/sleepy`, { method: 'PATCH', body: 'x' }));
    await check('DELETE', '/function/{name}', await fetch(`${t.url}/function/sleepy`, { method: 'DELETE' }));
    expect(await check('GET', '/function/{name}', await get('/function/nope'))).toEqual({ error: 'function "nope" not found' });
    expect((await get('/function/sleepy?sleep=1500')).status).toBe(504);
    expect((await fetch(`${t.url}/function/sleepy`, { method: 'POST', body: 'x'.repeat(20_000) })).status).toBe(413);

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

    await check('POST', '/async-function/{name}', await fetch(`${t.url}/async-function/nope`, { method: 'POST' }));
    await check('POST', '/async-function/{name}', await fetch(`${t.url}/async-function/sleepy`, { method: 'POST', headers: { 'x-callback-url': 'ftp://x' } }));
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
    t = await startTestGateway({ functionsDir: fixtureFunctions, options: { auth: { token, readPublic: false } } });
  });
  afterAll(async () => t.close());

  it('needs credentials for /system reads, /metrics and the live data; not for invocation, health or the document', async () => {
    for (const path of ['/system/functions', '/system/function/sleepy', '/system/calls/x', '/system/logs?name=once', '/metrics']) {
      const refused = await fetch(`${t.url}${path}`);
      expect(refused.status, path).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBeTruthy();
      expect(((await refused.json()) as { error: string }).error).toMatch(/credentials required/);
      expect((await fetch(`${t.url}${path}`, { headers: bearer })).status, path).not.toBe(401);
    }
    for (const path of ['/function/sleepy', '/healthz', '/system/openapi.json']) expect((await fetch(`${t.url}${path}`)).status, path).toBe(200);

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
    expect(adminLast!.functions.find((f) => f.name === 'sleepy')!.lastErrors[0]).toMatchObject({ status: 504, message: expect.stringMatching(/did not answer within 1 s/) });
  });
});
