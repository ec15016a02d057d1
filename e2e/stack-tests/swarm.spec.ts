// The swarm runtime in the deployed stack, observed through the Swarm API: functions are
// services scaled from zero on the first call and back to zero when idle, one-shot calls are
// replicated-job services, tasks are locked down, and a task killed under load loses no vote.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { engine, functionServices, replicas, runningTasks, tasks } from './engine.js';

const stack = () => process.env.STACK_NAME!;
const url = (path: string) => `${process.env.VOTE_URL}${path}`;
const service = async (fn: string) => {
  const [found, ...more] = await functionServices(stack(), fn);
  expect(more).toEqual([]);
  return found!;
};

async function tallies(): Promise<{ a: number; b: number }> {
  const response = await fetch(url('/function/results'));
  expect(response.status).toBe(200);
  return (await response.json()) as { a: number; b: number };
}

/** Form posts (the original's `POST /` with `vote=a|b`), a new voter each; counts what was accepted. */
async function castVotes(total: number, concurrency: number, during?: (sent: number) => Promise<void> | void) {
  const accepted = { a: 0, b: 0 };
  /** Votes whose answer was lost (an instance killed in the call): maybe recorded, maybe not. */
  const unanswered = { a: 0, b: 0 };
  const refused: Record<string, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      if (during) await during(i);
      const vote = i % 3 === 2 ? 'b' : 'a';
      let response: Response;
      try {
        response = await fetch(url('/'), {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `vote=${vote}`,
          redirect: 'manual',
        });
        await response.arrayBuffer();
      } catch (error) {
        const code = (error as { cause?: { code?: string } }).cause?.code ?? 'error';
        refused[code] = (refused[code] ?? 0) + 1;
        unanswered[vote]++;
        continue;
      }
      if (response.status === 303) accepted[vote]++;
      else refused[response.status] = (refused[response.status] ?? 0) + 1;
      if (response.status >= 500) unanswered[vote]++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { accepted, unanswered, refused };
}

test('a warm function is a service scaled from zero on the first call and back to zero when idle', async () => {
  const name = `${stack()}-fn-sleepy`;
  let sleepy = await service('sleepy');
  expect(sleepy.Spec.Name).toBe(name);
  await expect.poll(async () => replicas(await service('sleepy')), { timeout: 15_000 }).toBe(0);
  expect(await runningTasks(name)).toEqual([]);

  const began = Date.now();
  const response = await fetch(url('/function/sleepy/a'), { method: 'POST', body: 'hi' });
  const coldMs = Date.now() - began;
  expect(response.status).toBe(200);
  expect(await response.json()).toMatchObject({ path: '/a', body: 'hi', instance: expect.stringMatching(/^sleepy-1-/) });
  expect(replicas(await service('sleepy'))).toBe(1);
  expect(await runningTasks(name)).toHaveLength(1);
  test.info().annotations.push({ type: 'scale from zero', description: `${coldMs} ms` });

  // idleSeconds is 1: back to zero replicas, and no task left running.
  await expect.poll(async () => replicas(await service('sleepy')), { timeout: 15_000 }).toBe(0);
  await expect.poll(async () => (await runningTasks(name)).length, { timeout: 15_000 }).toBe(0);
});

test('under load a function gets more replicas, up to its maxInstances', async () => {
  const name = `${stack()}-fn-sleepy`;
  // maxConcurrency 2 over maxInstances 2: a second call in flight asks for a second replica.
  const seen = new Set<number>();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      seen.add(replicas(await service('sleepy')) ?? -1);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const calls = await Promise.all(Array.from({ length: 6 }, () => fetch(url('/function/sleepy?sleep=700')).then((r) => r.status)));
  watching = false;
  await watcher;
  expect(calls.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);
  expect(seen.has(2)).toBe(true);
  expect(Math.max(...seen)).toBe(2);
  expect((await tasks(name)).filter((t) => t.DesiredState === 'running').length).toBeLessThanOrEqual(2);
  await expect.poll(async () => replicas(await service('sleepy')), { timeout: 20_000 }).toBe(0);
});

test('a one-shot call runs as a replicated-job service of its own, removed afterwards', async () => {
  expect(await functionServices(stack(), 'once')).toEqual([]);
  const slow = fetch(url('/function/once?sleep=1500'));
  let job: Awaited<ReturnType<typeof service>> | undefined;
  await expect
    .poll(async () => (job = (await functionServices(stack(), 'once'))[0]) !== undefined, { timeout: 10_000 })
    .toBe(true);
  expect(job!.Spec.Mode.ReplicatedJob).toBeDefined();
  expect((await slow).status).toBe(200);
  const [first, second] = await Promise.all([1, 2].map(async () => (await (await fetch(url('/function/once'))).json()) as { instance: string; env: object; body: string }));
  expect(first!.env).toEqual({ GREETING: 'hello' });
  expect(second!.env).toEqual({ GREETING: 'hello' });
  const posted = await fetch(url('/function/once/x'), { method: 'POST', body: 'a body for a job' });
  expect(await posted.json()).toMatchObject({ path: '/x', body: 'a body for a job' });
  await expect.poll(async () => (await functionServices(stack(), 'once')).length, { timeout: 10_000 }).toBe(0);
});

test('function tasks are locked down and get secrets as Swarm secrets, not in their spec', async () => {
  await fetch(url('/function/vote'));
  const vote = await service('vote');
  const spec = vote.Spec.TaskTemplate;
  expect(spec.ContainerSpec).toMatchObject({ User: '1000:1000', ReadOnly: true, Init: true, CapabilityDrop: ['ALL'] });
  expect(spec.ContainerSpec.Image).toMatch(/^sha256:/);
  expect(spec.Resources.Limits).toEqual({ MemoryBytes: 128 * 1024 * 1024, NanoCPUs: 1_000_000_000, Pids: 64 });
  expect(spec.Networks.map((n) => n.Target)).toHaveLength(1);
  expect(vote.Spec.EndpointSpec.Mode).toBe('dnsrr');
  const declared = (JSON.parse(readFileSync(join(import.meta.dirname, '../../functions/vote/function.json'), 'utf8')) as { secrets: string[] }).secrets;
  expect(declared).toContain('cookie-secret');
  expect(spec.ContainerSpec.Secrets?.map((s) => s.File.Name).sort()).toEqual([...declared].sort());
  for (const name of declared) {
    const variable = name.toUpperCase().replaceAll('-', '_');
    expect(spec.ContainerSpec.Env.filter((e) => e.startsWith(`${variable}=`))).toEqual([]);
  }
  expect((spec.ContainerSpec.Mounts ?? []).map((m) => m.Type)).toEqual(['tmpfs']);
  const network = await engine<{ Name: string; Driver: string }>('GET', `/networks/${spec.Networks[0]!.Target}`);
  expect(network).toMatchObject({ Name: `${stack()}-back`, Driver: 'overlay' });
});

test('500 votes through the form post are tallied exactly', async () => {
  const before = await tallies();
  const { accepted, refused } = await castVotes(500, 16);
  expect(refused).toEqual({});
  expect(accepted.a + accepted.b).toBe(500);
  await expect.poll(tallies, { timeout: 15_000 }).toEqual({ a: before.a + accepted.a, b: before.b + accepted.b });
});

test('a function task killed mid-load loses no accepted vote', async () => {
  const before = await tallies();
  const killed: string[] = [];
  const kill = async (fn: string) => {
    const [task] = await runningTasks(`${stack()}-fn-${fn}`);
    const container = task?.Status.ContainerStatus?.ContainerID;
    if (!container) return;
    await engine('POST', `/containers/${container}/kill`);
    killed.push(fn);
  };
  const { accepted, unanswered, refused } = await castVotes(1500, 16, async (i) => {
    if (i === 300) await kill('vote');
    if (i === 700) await kill('record-vote');
  });
  expect(killed).toEqual(['vote', 'record-vote']);
  test.info().annotations.push({ type: 'votes', description: `accepted ${accepted.a + accepted.b}, refused ${JSON.stringify(refused)}` });
  // Most were accepted (a killed vote task costs the calls it had in flight, nothing more)...
  expect(accepted.a + accepted.b).toBeGreaterThan(1400);
  // ...and every accepted one is counted, once. A call whose answer was lost with the killed
  // task may have been queued before it died (at least once): it may count too, nothing else.
  const least = { a: before.a + accepted.a, b: before.b + accepted.b };
  await expect.poll(async () => { const t = await tallies(); return t.a >= least.a && t.b >= least.b; }, { timeout: 30_000 }).toBe(true);
  await new Promise((r) => setTimeout(r, 2_000)); // retries of the killed record-vote's batch land
  const final = await tallies();
  expect(final.a - least.a).toBeLessThanOrEqual(unanswered.a);
  expect(final.b - least.b).toBeLessThanOrEqual(unanswered.b);
});
