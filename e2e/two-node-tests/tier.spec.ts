// The gateway tier on a two-node Swarm: an edge on each node, one service per function whichever
// edge asks, an edge killed under load, a network partition between the nodes, and the edges
// scaled by their load. The nodes are network namespaces this test run made (10.231.0.0/24): no
// traffic leaves them and this machine.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { engine, functionServices, replicas, runningTasks, tasks, votesTable } from '../stack-tests/engine.js';
import { castVotes, queueDepth, type Accepted } from '../stack-tests/votes.js';
import { NODES } from '../two-node-setup.js';

test.describe.configure({ mode: 'serial' });

const root = join(import.meta.dirname, '../..');
const stack = () => process.env.STACK_NAME!;
const [node1, node2] = NODES;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A figure of this run: in the report and in the output. */
const report = (type: string, description: string) => {
  test.info().annotations.push({ type, description });
  process.stdout.write(`${type}: ${description}\n`);
};

/** maxInstances of every function, from the manifests the stack was deployed with. */
const maxInstances = Object.fromEntries(
  readdirSync(join(root, 'functions'), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => [d.name, (JSON.parse(readFileSync(join(root, 'functions', d.name, 'function.json'), 'utf8')) as { maxInstances?: number }).maxInstances ?? 1]),
);

interface Member {
  role: string;
  host: string;
  leader: boolean;
}
const tier = async (base: string) => (await (await fetch(`${base}/system/gateways`, { signal: AbortSignal.timeout(3_000) })).json()) as Member[];

/** The Swarm node id of each node's engine. */
async function nodeIds(): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const n of NODES) ids.set((await engine<{ Swarm: { NodeID: string } }>('GET', '/info', undefined, n.socket)).Swarm.NodeID, n.name);
  return ids;
}

/** The nodes the edges run on now, by name. */
async function edgeNodes(): Promise<string[]> {
  const ids = await nodeIds();
  const tasks = (await runningTasks(`${stack()}_gateway`)) as Array<{ NodeID: string }>;
  return tasks.map((t) => ids.get(t.NodeID) ?? t.NodeID).sort();
}

/** Every edge task Swarm knows, with its state and error: what a failed wait for the edges says. */
async function edgeTasks(): Promise<string> {
  const ids = await nodeIds();
  const all = (await tasks(`${stack()}_gateway`)) as Array<{ NodeID: string; DesiredState: string; Status: { State: string; Err?: string; Message?: string } }>;
  return all.map((t) => `${ids.get(t.NodeID) ?? t.NodeID} ${t.DesiredState}/${t.Status.State} ${t.Status.Err ?? t.Status.Message ?? ''}`).join('; ');
}

/**
 * Watches the function services while a test runs: the most services any function had at once,
 * and its most replicas. Reads the manager's engine, which answers throughout (it is the only
 * manager, so a partition leaves it its quorum).
 */
function watchFunctions() {
  const services: Record<string, number> = {};
  const most: Record<string, number> = {};
  let watching = true;
  const done = (async () => {
    while (watching) {
      const counted: Record<string, number> = {};
      for (const s of await functionServices(stack()).catch(() => [])) {
        const fn = s.Spec.Labels['serverless-platform.swarm.function']!;
        counted[fn] = (counted[fn] ?? 0) + 1;
        most[fn] = Math.max(most[fn] ?? 0, replicas(s) ?? 0);
      }
      for (const [fn, n] of Object.entries(counted)) services[fn] = Math.max(services[fn] ?? 0, n);
      await sleep(200);
    }
  })();
  return {
    async stop() {
      watching = false;
      await done;
      return { services, most };
    },
  };
}

/** Every accepted vote is in the `votes` table with the vote it was accepted with. */
async function expectAllRecorded(accepted: Map<string, Accepted>, before: Map<string, string>, unanswered: number) {
  await expect.poll(() => queueDepth(node1.url), { message: 'the queue drained', timeout: 90_000 }).toBe(0);
  const after = await votesTable(stack());
  const lost = [...accepted].filter(([id, v]) => after.get(id) !== v.vote).map(([id, v]) => `${id} (${v.vote} via ${v.via})`);
  expect(lost).toEqual([]);
  // Rows for voters never answered may be there too (queued before the answer was lost), nothing else.
  expect([...after.keys()].filter((id) => !before.has(id) && !accepted.has(id)).length).toBeLessThanOrEqual(unanswered);
}

/** A vote through `base` is accepted now. */
const accepts = async (base: string) =>
  fetch(`${base}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'vote=a',
    redirect: 'manual',
    signal: AbortSignal.timeout(5_000),
  }).then(
    (r) => r.status === 303,
    () => false,
  );

test('an edge on each node, one service per function, replicas within maxInstances; an edge killed mid-load loses no accepted vote', async () => {
  expect(await edgeNodes()).toEqual(['vnode1', 'vnode2']);
  for (const n of NODES) expect((await fetch(`${n.url}/healthz`)).status).toBe(200);
  const watcher = watchFunctions();
  for (const n of NODES) await fetch(`${n.url}/function/vote`); // warm instances before the load
  const before = await votesTable(stack());
  let killed: { container: string; at: number } | undefined;
  const { accepted, unanswered, refusedVia } = await castVotes(
    (i) => NODES[i % 2]!.url,
    1600,
    16,
    async (i) => {
      if (i !== 500) return;
      const [edge] = await engine<Array<{ Id: string }>>(
        'GET',
        `/containers/json?filters=${encodeURIComponent(JSON.stringify({ label: [`com.docker.swarm.service.name=${stack()}_gateway`] }))}`,
        undefined,
        node2.socket,
      );
      if (!edge) throw new Error('no edge container on vnode2');
      await engine('POST', `/containers/${edge.Id}/kill`, undefined, node2.socket);
      killed = { container: edge.Id, at: Date.now() };
    },
  );
  const { services, most } = await watcher.stop();
  report('edge killed, votes', `accepted ${accepted.size}, unanswered ${unanswered}, refused ${JSON.stringify(refusedVia)}`);
  expect(killed).toBeDefined();
  // Only the killed edge's requests failed: those in flight, and those sent to its node until
  // it was back (its port is its node's own). The other node refused nothing.
  expect(refusedVia[node1.url]).toBeUndefined();
  for (const why of Object.keys(refusedVia[node2.url] ?? {})) expect(['ECONNRESET', 'ECONNREFUSED', 'UND_ERR_SOCKET', 'EPIPE']).toContain(why);
  const afterKill = [...accepted.values()].filter((v) => v.sentAt > killed!.at);
  expect(afterKill.filter((v) => v.via === node1.url).length, 'votes accepted on vnode1 after the kill').toBeGreaterThan(200);
  // Swarm starts the edge again on its node.
  await expect.poll(edgeNodes, { message: 'an edge runs on each node again', timeout: 60_000 }).toEqual(['vnode1', 'vnode2']);
  await expect.poll(() => accepts(node2.url), { message: 'the restarted edge accepts votes', timeout: 30_000 }).toBe(true);
  await expectAllRecorded(accepted, before, unanswered);
  // One service per function, shared by both edges, never above its maxInstances.
  for (const fn of ['vote', 'record-vote']) expect(services[fn], `services of ${fn}`).toBe(1);
  for (const [fn, n] of Object.entries(most)) expect(n, `replicas of ${fn}`).toBeLessThanOrEqual(maxInstances[fn]!);
});

/** Each controller's spans of leading, from its own log lines (pino's `time`, this machine's clock). */
function leadSpans(): Array<{ container: string; from: number; to: number }> {
  const ids = execFileSync('docker', ['ps', '-aq', '--no-trunc', '--filter', `label=com.docker.swarm.service.name=${stack()}_controller`], {
    encoding: 'utf8',
  })
    .split('\n')
    .filter(Boolean);
  return ids.flatMap((id) => {
    const lines = execFileSync('docker', ['logs', id], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 })
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { time: number; msg: string });
    const spans: Array<{ container: string; from: number; to: number }> = [];
    for (const line of lines) {
      if (line.msg === 'leading: starting the runtime') spans.push({ container: id, from: line.time, to: Number.POSITIVE_INFINITY });
      const open = spans.at(-1);
      if (open && open.to === Number.POSITIVE_INFINITY && /^lost the lead|stopping$/.test(line.msg)) open.to = line.time;
    }
    // A controller that exited without a word (killed) stopped leading when it exited.
    const state = JSON.parse(execFileSync('docker', ['inspect', '--format', '{{json .State}}', id], { encoding: 'utf8' })) as {
      Running: boolean;
      FinishedAt: string;
    };
    const open = spans.at(-1);
    if (open && open.to === Number.POSITIVE_INFINITY && !state.Running) open.to = Date.parse(state.FinishedAt);
    return spans;
  });
}

test('a partition between the nodes for 10 s while votes arrive on both: never two leaders at once, no accepted vote lost, back to normal within seconds of the heal', async () => {
  // The data (PostgreSQL, Redis) is on vnode2, both controllers on vnode1, the manager: the cut
  // separates the leader from the database its lock lives in.
  const leaderBefore = (await tier(node1.url)).find((m) => m.role === 'controller' && m.leader);
  expect(leaderBefore).toBeDefined();
  for (const n of NODES) await fetch(`${n.url}/function/vote`); // warm instances before the load
  const watcher = watchFunctions();
  const before = await votesTable(stack());
  let cutAt = 0;
  let healedAt = 0;
  let recoveredAt = 0;
  const partition = (async () => {
    await sleep(5_000);
    execFileSync('bash', [join(root, 'infra/scripts/two-node-swarm.sh'), 'cut']);
    cutAt = Date.now();
    await sleep(10_000);
    execFileSync('bash', [join(root, 'infra/scripts/two-node-swarm.sh'), 'heal']);
    healedAt = Date.now();
    // Back to normal: votes accepted through both nodes, and a controller leads again.
    while (!recoveredAt && Date.now() - healedAt < 90_000) {
      const both = (await accepts(node1.url)) && (await accepts(node2.url));
      const led = both && (await tier(node1.url).catch(() => [])).some((m) => m.role === 'controller' && m.leader);
      if (led) recoveredAt = Date.now();
      else await sleep(250);
    }
    await sleep(3_000); // and votes through both nodes a while longer
  })();
  let partitionDone = false;
  void partition.finally(() => {
    partitionDone = true;
  });
  try {
    const load = await castVotes((i) => NODES[i % 2]!.url, Number.POSITIVE_INFINITY, 16, undefined, {
      timeoutMs: 10_000,
      until: () => partitionDone,
    });
    await partition;
    const { accepted, unanswered, refusedVia } = load;
    const { most } = await watcher.stop();
    report('partition, votes', `accepted ${accepted.size}, unanswered ${unanswered}, refused ${JSON.stringify(refusedVia)}`);
    report('partition, back to normal', `${recoveredAt - healedAt} ms after the heal`);
    expect(cutAt).toBeGreaterThan(0);
    expect(recoveredAt, 'votes accepted through both nodes and a leader, after the heal').toBeGreaterThan(0);
    expect(recoveredAt - healedAt).toBeLessThan(45_000);
    expect([...accepted.values()].filter((v) => v.answeredAt < cutAt).length, 'votes accepted before the cut').toBeGreaterThan(100);
    expect([...accepted.values()].filter((v) => v.sentAt > recoveredAt).length, 'votes accepted after the heal').toBeGreaterThan(0);
    await expectAllRecorded(accepted, before, unanswered);
    for (const [fn, n] of Object.entries(most)) expect(n, `replicas of ${fn}`).toBeLessThanOrEqual(maxInstances[fn]!);
  } finally {
    execFileSync('bash', [join(root, 'infra/scripts/two-node-swarm.sh'), 'heal']);
  }
  // The leader cut from the database stopped leading during the cut, and no two controllers ever
  // led at once: each span of leading ends before the next begins.
  const spans = leadSpans().sort((a, b) => a.from - b.from);
  report(
    'partition, leading',
    spans
      .map((l) => `${l.container.slice(0, 12)} ${new Date(l.from).toISOString()} → ${Number.isFinite(l.to) ? new Date(l.to).toISOString() : 'now'}`)
      .join('; '),
  );
  expect(
    spans.some((s) => s.to > cutAt && s.to < healedAt + 5_000),
    'the leader stopped leading once cut from the database',
  ).toBe(true);
  expect(
    spans.some((s) => s.from > cutAt),
    'a controller led again',
  ).toBe(true);
  for (let i = 1; i < spans.length; i++) expect(spans[i]!.from, `lead ${i} began after lead ${i - 1} ended`).toBeGreaterThan(spans[i - 1]!.to);
});

test('the edges are scaled down when idle and up under load, and the dashboard shows it', async ({ page }) => {
  // The stack keeps two edges at least (EDGE_REPLICAS_MIN's default); lowered to one here, through
  // a rolling update of the controllers (a redeploy of the controller service is no outage).
  execFileSync('docker', ['service', 'update', '--quiet', '--env-add', 'EDGE_REPLICAS_MIN=1', `${stack()}_controller`], { stdio: 'ignore', timeout: 120_000 });
  const edges = () =>
    engine<{ Spec: { Mode: { Replicated: { Replicas: number } } } }>('GET', `/services/${stack()}_gateway`).then((s) => s.Spec.Mode.Replicated.Replicas);
  await expect.poll(edges, { message: 'idle edges scaled down to one', timeout: 90_000 }).toBe(1);
  await expect.poll(async () => (await edgeNodes()).length, { message: 'one edge left running', timeout: 30_000 }).toBe(1);
  const [left] = await edgeNodes();
  const base = NODES.find((n) => n.name === left)!.url;
  await page.goto(`${base}/system/ui/`);
  const timeline = page.getByTestId('timeline');
  await expect(timeline).toContainText('2 → 1 edges', { timeout: 15_000 });
  // The load through the one edge asks for a second; it starts on the other node.
  let scaled = false;
  const load = castVotes(() => base, Number.POSITIVE_INFINITY, 24, undefined, { until: () => scaled });
  try {
    await expect.poll(edges, { message: 'edges scaled up under load', timeout: 90_000 }).toBe(2);
    await expect
      .poll(edgeNodes, { message: 'an edge on each node', timeout: 90_000 })
      .toEqual(['vnode1', 'vnode2'])
      .catch(async (error: Error) => {
        throw new Error(`${error.message}\nedge tasks: ${await edgeTasks()}`);
      });
  } finally {
    scaled = true;
  }
  const { accepted } = await load;
  expect(accepted.size).toBeGreaterThan(0);
  await expect(timeline).toContainText('1 → 2 edges', { timeout: 15_000 });
  await expect(page.getByTestId('gateways')).toContainText('edge');
  // The edge just started shows the same timeline: the controller's, from before it started too.
  const started = NODES.find((n) => n.name !== left)!.url;
  await expect.poll(() => accepts(started), { message: 'the new edge takes votes', timeout: 30_000 }).toBe(true);
  await page.goto(`${started}/system/ui/`);
  await expect(timeline).toContainText('2 → 1 edges', { timeout: 15_000 });
  await expect(timeline).toContainText('1 → 2 edges');
});
