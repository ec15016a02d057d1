// The swarm runtime in the deployed stack, observed through the Swarm API: functions are
// services scaled from zero on the first call and back to zero when idle, one-shot calls are
// replicated-job services, tasks are locked down, and a task killed under load loses no vote.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { engine, functionServices, replicas, runningTasks, tasks, votesTable } from './engine.js';
import { castVotes as castVotesTo, queueDepth as queueDepthAt, type Vote } from './votes.js';

const stack = () => process.env.STACK_NAME!;
const execFileAsync = promisify(execFile);
const url = (path: string) => `${process.env.VOTE_URL}${path}`;
const service = async (fn: string) => {
  const [found, ...more] = await functionServices(stack(), fn);
  expect(more).toEqual([]);
  return found!;
};

const castVotes = (total: number, concurrency: number, during?: (sent: number) => Promise<void> | void) =>
  castVotesTo(() => process.env.VOTE_URL!, total, concurrency, during);
const queueDepth = () => queueDepthAt(process.env.VOTE_URL!);

async function tallies(): Promise<{ a: number; b: number }> {
  const response = await fetch(url('/function/results'));
  expect(response.status).toBe(200);
  return (await response.json()) as { a: number; b: number };
}

test('a warm function is a service scaled from zero on the first call and back to zero when idle', async () => {
  const sleepy = await service('sleepy');
  // One service per version of the function, named by it.
  expect(sleepy.Spec.Name).toBe(`${stack()}-fn-sleepy-${sleepy.Spec.Labels?.['serverless-platform.swarm.version']}`);
  const name = sleepy.ID;
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
  const name = (await service('sleepy')).ID;
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
  await expect.poll(async () => (job = (await functionServices(stack(), 'once'))[0]) !== undefined, { timeout: 10_000 }).toBe(true);
  expect(job!.Spec.Mode.ReplicatedJob).toBeDefined();
  expect((await slow).status).toBe(200);
  const [first, second] = await Promise.all(
    [1, 2].map(async () => (await (await fetch(url('/function/once'))).json()) as { instance: string; env: object; body: string }),
  );
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
  const count = (vote: Vote) => [...accepted.values()].filter((v) => v.vote === vote).length;
  await expect.poll(tallies, { timeout: 15_000 }).toEqual({ a: before.a + count('a'), b: before.b + count('b') });
});

test('a vote and a record-vote task killed in the middle of 1,500 votes without losing an accepted one', async () => {
  // Break it catches: acknowledging a queued call whose record-vote invocation failed.
  const before = await votesTable(stack());
  const kills: Array<{ fn: string; task: string; startedAt: number; doneAt: number }> = [];
  const missed: string[] = [];
  const kill = async (fn: string) => {
    const startedAt = Date.now();
    const [task] = await runningTasks((await service(fn)).ID);
    const container = task?.Status.ContainerStatus?.ContainerID;
    if (!task || !container) return void missed.push(`${fn}: no running task to kill`);
    await engine('POST', `/containers/${container}/kill`);
    kills.push({ fn, task: task.ID, startedAt, doneAt: Date.now() });
  };
  const { accepted, unanswered, refused } = await castVotes(1500, 16, async (i) => {
    if (i === 300) await kill('vote');
    if (i === 700) await kill('record-vote');
  });
  test.info().annotations.push({ type: 'votes', description: `accepted ${accepted.size}, unanswered ${unanswered}, refused ${JSON.stringify(refused)}` });
  expect(missed).toEqual([]);
  expect(kills.map((k) => k.fn)).toEqual(['vote', 'record-vote']);
  // Each kill fell in the middle of the load: votes were accepted before it and after it, and
  // the killed task was replaced by one started after the kill.
  const votes = [...accepted.values()];
  for (const k of kills) {
    expect(votes.filter((v) => v.answeredAt < k.startedAt).length, `votes accepted before ${k.fn} was killed`).toBeGreaterThan(100);
    expect(votes.filter((v) => v.sentAt > k.doneAt).length, `votes accepted after ${k.fn} was killed`).toBeGreaterThan(100);
    await expect
      .poll(
        async () => {
          const all = await tasks((await service(k.fn)).ID);
          const replaced = all.some((t) => t.ID !== k.task && t.Status.State === 'running' && Date.parse(t.CreatedAt) > k.startedAt);
          return replaced && all.find((t) => t.ID === k.task)?.Status.State !== 'running';
        },
        { message: `the killed ${k.fn} task was replaced`, timeout: 15_000 },
      )
      .toBe(true);
  }
  // Most were accepted: a killed vote task costs the calls it had in flight, nothing more.
  expect(accepted.size).toBeGreaterThan(1400);
  // Once every queued call is acknowledged, each accepted voter is in `votes` with the vote it
  // was accepted with. Rows for voters never answered may be there too (queued before the task
  // died), nothing else.
  await expect.poll(queueDepth, { message: 'the queue drained', timeout: 60_000 }).toBe(0);
  const after = await votesTable(stack());
  const lost = [...accepted]
    .filter(([id, v]) => after.get(id) !== v.vote)
    .map(([id, v]) => `${id}: accepted ${v.vote}, recorded ${after.get(id) ?? 'nothing'}`);
  expect(lost).toEqual([]);
  const unknown = [...after.keys()].filter((id) => !before.has(id) && !accepted.has(id));
  expect(unknown.length).toBeLessThanOrEqual(unanswered);
});

test('the leading controller killed in the middle of 1,000 votes: a standby leads, no vote is refused or lost, and only controllers hold the Docker socket', async () => {
  // Break it catches: the Docker socket mounted into the edges; a standby that never leads.
  const mounts = async (service: string) =>
    Promise.all(
      (await runningTasks(`${stack()}_${service}`)).map(async (t) => {
        const container = await engine<{ Mounts: Array<{ Source: string }> }>('GET', `/containers/${t.Status.ContainerStatus!.ContainerID}/json`);
        return container.Mounts.map((m) => m.Source).filter((source) => source.endsWith('docker.sock'));
      }),
    );
  expect(await mounts('gateway')).toEqual([[]]);
  expect(await mounts('controller')).toEqual([['/var/run/docker.sock'], ['/var/run/docker.sock']]);
  const tier = async () => (await (await fetch(url('/system/gateways'))).json()) as Array<{ role: string; host: string; leader: boolean }>;
  const leader = async () => (await tier()).find((m) => m.role === 'controller' && m.leader)?.host;
  const killed = await leader();
  expect(killed).toBeTruthy();
  await fetch(url('/function/vote')); // a warm vote instance before the load
  const voteTasks = (await runningTasks((await service('vote')).ID)).map((t) => t.ID);
  expect(voteTasks.length).toBeGreaterThan(0);
  const before = await votesTable(stack());
  let killedAt = 0;
  const { accepted, unanswered, refused } = await castVotes(1000, 16, async (i) => {
    if (i !== 300) return;
    // The controller's host name is its container's short id.
    await engine('POST', `/containers/${killed}/kill`);
    killedAt = Date.now();
  });
  test.info().annotations.push({ type: 'votes', description: `accepted ${accepted.size}, unanswered ${unanswered}, refused ${JSON.stringify(refused)}` });
  expect(killedAt).toBeGreaterThan(0);
  await expect
    .poll(
      async () => {
        const now = await leader();
        return now !== undefined && now !== killed;
      },
      { message: 'a standby leads', timeout: 15_000 },
    )
    .toBe(true);
  // The new leader took the running vote tasks over as its own (Runtime.adopt): it says so, and
  // none of them was scaled away. Break it catches: a new leader counting from zero.
  const now = (await tier()).find((m) => m.role === 'controller' && m.leader)!.host;
  const { stdout } = await execFileAsync('docker', ['logs', now], { encoding: 'utf8' });
  for (const task of voteTasks) expect(stdout).toMatch(new RegExp(`vote: took over \\d+ running instances: .*vote-\\d+-${task}`));
  const still = (await runningTasks((await service('vote')).ID)).map((t) => t.ID);
  for (const task of voteTasks) expect(still).toContain(task);
  // The instances outlive the controller: the edges call them throughout.
  expect(refused).toEqual({});
  expect([...accepted.values()].filter((v) => v.sentAt > killedAt).length, 'votes accepted after the kill').toBeGreaterThan(100);
  await expect.poll(queueDepth, { message: 'the queue drained', timeout: 60_000 }).toBe(0);
  const after = await votesTable(stack());
  const lost = [...accepted].filter(([id, v]) => after.get(id) !== v.vote).map(([id]) => id);
  expect(lost).toEqual([]);
  expect([...after.keys()].filter((id) => !before.has(id) && !accepted.has(id))).toEqual([]);
});
