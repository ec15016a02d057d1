import { readFile, readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareDocker } from './docker-network.js';
import { pythonFixtureFunctions, startTestGateway, type TestGateway } from './harness.js';

// Functions in Python through the gateway on the process runtime: warm (an HTTP server that told
// the runtime it is ready over its IPC channel) and one-shot (stdin and stdout), with the
// contract's Python kit on their path. The function is fn new's Python template.
describe('Python functions (process runtime)', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ functionsDir: pythonFixtureFunctions });
  });
  afterAll(async () => t.close());

  const greet = (fn: string, body: string) => fetch(`${t.url}/function/${fn}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  it.each(['greet', 'greet-once'])('%s answers a greeting, and a clear 400 for a bad body', async (fn) => {
    const answer = await greet(fn, '{"name": "workshop"}');
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as { greeting: string; instance: string };
    expect(body.greeting).toBe('Hello, workshop!');
    expect(body.instance).toMatch(new RegExp(`^${fn}-[0-9a-f]{6}$`));
    const bad = await greet(fn, '["workshop"]');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'body must be a JSON object' });
  });

  it('runs the warm instance as a python3 process, serving call after call', async () => {
    const bodies = await Promise.all([1, 2, 3].map(async (n) => (await (await greet('greet', `{"name": "n${n}"}`)).json()) as { instance: string }));
    expect(new Set(bodies.map((b) => b.instance)).size).toBe(1);
    const status = (await (await fetch(`${t.url}/system/function/greet`)).json()) as { replicas: number };
    expect(status.replicas).toBe(1);
    const pids = (await (await fetch(`${t.url}/system/functions`)).json()) as Array<{ name: string; instances: string[] }>;
    expect(pids.find((f) => f.name === 'greet')!.instances).toEqual([bodies[0]!.instance]);
    // The process behind it: python3 running the function's file, a child of this gateway's process.
    const commands: string[] = [];
    for (const entry of await readdir('/proc')) {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
      if (!/^\d+$/.test(entry) || Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== process.pid) continue;
      commands.push((await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' '));
    }
    expect(commands.filter((c) => /^\S*python3(\.\d+)? \S+\/templates\/python\/main\.py $/.test(c))).toHaveLength(1);
  });
});

// The same functions as containers of their image (the contract's Python Dockerfile on a Python
// base, built by `npm run images`), warm and one-shot.
describe('Python functions (docker runtime)', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ functionsDir: pythonFixtureFunctions, runtime: 'docker', docker: await prepareDocker() });
  });
  afterAll(async () => t?.close());

  it.each(['greet', 'greet-once'])('%s answers a greeting from its container', async (fn) => {
    const answer = await fetch(`${t.url}/function/${fn}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name": "container"}' });
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { greeting: string }).greeting).toBe('Hello, container!');
    const bad = await fetch(`${t.url}/function/${fn}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(bad.status).toBe(400);
  });
});
