// The swarm runtime against this machine's Docker Engine in Swarm mode (a single-node Swarm is
// initialised when the engine is in none; if that cannot be done the tests fail, never skip).
// Warm instances are served over the overlay network, which the host running these tests cannot
// reach: scaling, calls and killed tasks are tested in the deployed stack (e2e/stack-tests).
// Here: the services and secrets it makes, one-shot calls as job services, how it shares the warm
// services with other processes of the same deployment, and what it removes.
import { execFileSync } from 'node:child_process';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '@platform/test-services';
import { loadFunctions, type FunctionSpec } from '@platform/function-contract/manifest';
import { MANAGED_LABEL } from '@platform/core/runtimes/docker';
import { LABELS } from '@platform/core/labels';
import { SWARM_FUNCTION_LABEL, SWARM_OWNER_LABEL, SwarmRuntime } from '@platform/core/runtimes/swarm/index';
import { jobServiceSpec } from '@platform/core/runtimes/swarm/spec';
import { fixtureFunctions } from './harness.js';
import { prepareDocker } from './docker-network.js';

const docker = new Docker();
const NETWORK = 'voting-test-overlay';
const prefix = `t${process.pid}`;
const owned = (label: string) => ({ filters: JSON.stringify({ label: [label] }) });

interface ServiceInfo {
  ID: string;
  Version: { Index: number };
  Spec: { Name: string; Labels: Record<string, string>; Mode: { Replicated?: { Replicas: number } }; TaskTemplate: { ContainerSpec: { Env: string[] } } };
}
const inspect = async (name: string) => (await docker.getService(name).inspect()) as ServiceInfo;
const servicesOf = async (label: string) => (await docker.listServices(owned(label))) as unknown as ServiceInfo[];
/** A warm function's services (one per version deployed), by name. */
const versionsOf = async (fn: string) =>
  (await servicesOf(`${SWARM_FUNCTION_LABEL}=${fn}`))
    .filter((s) => s.Spec.Labels[SWARM_OWNER_LABEL] === prefix)
    .map((s) => s.Spec.Name)
    .sort();

async function ensureSwarm(): Promise<string> {
  const info = (await docker.info()) as { Swarm: { LocalNodeState: string } };
  if (info.Swarm.LocalNodeState === 'inactive') execFileSync('docker', ['swarm', 'init', '--advertise-addr', '127.0.0.1'], { stdio: 'inherit' });
  const networks = await docker.listNetworks({ filters: { name: [NETWORK] } });
  if (!networks.some((n) => n.Name === NETWORK)) {
    await docker.createNetwork({ Name: NETWORK, Driver: 'overlay', Attachable: true, Labels: { 'org.voting.test': 'true' } });
  }
  // Tasks reach the host (the callback port) through docker_gwbridge. The engine makes it when the first
  // container joins an overlay network, so a new Swarm has none yet: make it as the engine would.
  if (!(await docker.listNetworks({ filters: { name: ['docker_gwbridge'] } })).some((n) => n.Name === 'docker_gwbridge')) {
    await docker.createNetwork({
      Name: 'docker_gwbridge',
      Driver: 'bridge',
      Options: {
        'com.docker.network.bridge.name': 'docker_gwbridge',
        'com.docker.network.bridge.enable_icc': 'false',
        'com.docker.network.bridge.enable_ip_masquerade': 'true',
      },
    });
  }
  const bridge = await docker.getNetwork('docker_gwbridge').inspect();
  const host = bridge.IPAM?.Config?.[0]?.Gateway as string | undefined;
  if (!host) throw new Error('docker_gwbridge has no gateway address');
  return host;
}

describe('swarm runtime', () => {
  let runtime: SwarmRuntime;
  let specs: Map<string, FunctionSpec>;
  beforeAll(async () => {
    await prepareDocker();
    const host = await ensureSwarm();
    specs = new Map((await loadFunctions(fixtureFunctions)).map((f) => [f.name, { ...f, timeoutSeconds: 30 }]));
    runtime = new SwarmRuntime({
      env: {},
      secret: runtimeSecret,
      network: NETWORK,
      prefix,
      callback: { host, port: 18000 + (process.pid % 1000) },
    });
    await runtime.check();
  }, 180_000);
  /** Another process of the same deployment (same prefix), with its own controller id. */
  const another = (options: Partial<ConstructorParameters<typeof SwarmRuntime>[0]> = {}) =>
    new SwarmRuntime({ env: {}, secret: runtimeSecret, network: NETWORK, prefix, callback: { host: '127.0.0.1', port: 1 }, ...options });
  const runtimeSecret = (name: string) => (name === 'api-key' ? 'swarm-test-secret' : undefined);
  afterAll(async () => {
    await runtime?.close();
    await runtime?.removeAll();
    expect(await docker.listServices(owned(`${SWARM_OWNER_LABEL}=${prefix}`))).toEqual([]);
    expect(await docker.listSecrets(owned(`${SWARM_OWNER_LABEL}=${prefix}`))).toEqual([]);
    expect(await docker.listContainers({ all: true, ...owned(`${SWARM_OWNER_LABEL}=${prefix}`) })).toEqual([]);
  });

  it('deploys a warm function as a locked-down service at zero replicas, with its own labels', async () => {
    const spec = { ...specs.get('sleepy')!, secrets: ['api-key'] };
    await runtime.deploy(spec);
    const [service, ...more] = (await docker.listServices(owned(`${SWARM_OWNER_LABEL}=${prefix}`))) as Array<{
      Spec: {
        Name: string;
        Labels: Record<string, string>;
        Mode: object;
        EndpointSpec: object; // biome-ignore lint/suspicious/noExplicitAny: the Engine's task template, read field by field below
        TaskTemplate: Record<string, any>;
      };
    }>;
    expect(more).toEqual([]);
    // Named and labelled by its version: a hash of what it runs.
    const version = service!.Spec.Labels[LABELS.swarmVersion];
    expect(version).toMatch(/^[0-9a-f]{8}$/);
    expect(service!.Spec.Name).toBe(`${prefix}-sleepy-${version}`);
    expect(service!.Spec.Mode).toEqual({ Replicated: { Replicas: 0 } });
    expect(service!.Spec.EndpointSpec).toMatchObject({ Mode: 'dnsrr' });
    const container = service!.Spec.TaskTemplate.ContainerSpec;
    // Never the docker runtime's label: neither runtime removes what the other started.
    expect(container.Labels).toEqual({ [SWARM_OWNER_LABEL]: prefix, [SWARM_FUNCTION_LABEL]: 'sleepy' });
    expect(container.Labels[MANAGED_LABEL]).toBeUndefined();
    expect(container).toMatchObject({ User: '1000:1000', ReadOnly: true, Init: true, CapabilityDrop: ['ALL'] });
    expect(container.Image).toMatch(/^sha256:/);
    expect(service!.Spec.TaskTemplate.Resources.Limits).toEqual({ MemoryBytes: 128 * 1024 * 1024, NanoCPUs: 1e9, Pids: 64 });
    expect(service!.Spec.TaskTemplate.Networks.map((n: { Target: string }) => n.Target)).toHaveLength(1);
    // The secret is a Swarm secret for user 1000, its value nowhere in the spec.
    expect(container.Secrets.map((s: { File: object }) => s.File)).toEqual([{ Name: 'api-key', UID: '1000', GID: '1000', Mode: 0o400 }]);
    expect(JSON.stringify(service!.Spec)).not.toContain('swarm-test-secret');
  });

  it('runs a one-shot call as a replicated-job service, which fetches the invocation and posts the answer', async () => {
    const spec = specs.get('once')!;
    await runtime.deploy(spec);
    const invocation = { callId: 'c1', request: { method: 'POST', path: '/p', query: {}, headers: {}, body: 'job body' } };
    const seen: string[] = [];
    const watching = setInterval(() => {
      void docker.listServices(owned(`${SWARM_FUNCTION_LABEL}=once`)).then((list) => {
        for (const s of list as Array<{ Spec: { Mode: object; Labels: Record<string, string> } }>) seen.push(Object.keys(s.Spec.Mode)[0]!);
      });
    }, 100);
    const response = await runtime.runOnce(spec, invocation, AbortSignal.timeout(60_000)).finally(() => clearInterval(watching));
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body!)).toMatchObject({ path: '/p', body: 'job body', env: { GREETING: 'hello' } });
    expect(seen).toContain('ReplicatedJob');
    // Its service and its finished container are gone.
    expect(await docker.listServices(owned(`${SWARM_FUNCTION_LABEL}=once`))).toEqual([]);
    expect(await docker.listContainers({ all: true, ...owned(`${SWARM_OWNER_LABEL}=${prefix}`) })).toEqual([]);
  }, 90_000);

  it('answers 502 when a job task exits without answering, and removes it', async () => {
    const spec = specs.get('once')!;
    const invocation = { callId: 'c2', request: { method: 'GET', path: '/', query: { exit: '' }, headers: {}, body: '' } };
    await expect(runtime.runOnce(spec, invocation, AbortSignal.timeout(60_000))).rejects.toMatchObject({ status: 502 });
    expect(await docker.listServices(owned(`${SWARM_FUNCTION_LABEL}=once`))).toEqual([]);
  }, 90_000);

  it('deploys again without recreating or updating the service', async () => {
    // Break it catches: a deploy that removes and recreates the service, or updates it when nothing changed.
    const spec = { ...specs.get('sleepy')!, secrets: ['api-key'] };
    await runtime.deploy(spec);
    const [name, ...more] = await versionsOf('sleepy');
    expect(more).toEqual([]);
    const before = await inspect(name!);
    await runtime.deploy(spec);
    await another().deploy({ ...spec });
    expect(await versionsOf('sleepy')).toEqual([name]);
    const after = await inspect(name!);
    expect(after.ID).toBe(before.ID);
    expect(after.Version.Index).toBe(before.Version.Index);
  });

  it('deploys a changed function as a service of its own, and takes the old one away once it is removed', async () => {
    // Break it catches: an update in place (Swarm replacing the tasks whose calls are draining),
    // an old version left behind, or the current version removed with an old spec of the same version.
    const spec = specs.get('crashy')!;
    await runtime.deploy(spec);
    const [first] = await versionsOf('crashy');
    const created = await inspect(first!);
    const changed = { ...spec, memoryMb: 96 };
    await runtime.deploy(changed);
    const both = await versionsOf('crashy');
    expect(both).toHaveLength(2);
    const [second] = both.filter((n) => n !== first);
    // The old version untouched while its instances drain.
    expect((await inspect(first!)).Version.Index).toBe(created.Version.Index);
    expect((await inspect(second!)).Spec.Mode).toEqual({ Replicated: { Replicas: 0 } });
    // Its instances stopped, the old spec's service goes; the new one stays.
    await runtime.remove(spec);
    expect(await versionsOf('crashy')).toEqual([second]);
    // The same version deployed again (a new spec object): removing the old spec keeps the service.
    const again = { ...changed };
    await runtime.deploy(again);
    await runtime.remove(changed);
    expect(await versionsOf('crashy')).toEqual([second]);
    // Removed for good: nothing of it is left.
    await runtime.remove(again);
    expect(await versionsOf('crashy')).toEqual([]);
  });

  it('takes away, when deploying a function, the versions a controller before it left', async () => {
    // Break it catches: a new leader leaving an old version's service (and its replicas) running with nobody to scale it.
    const spec = specs.get('crashy')!;
    const before = another();
    await before.deploy(spec);
    const [old] = await versionsOf('crashy');
    await docker
      .getService(old!)
      .update({ version: (await inspect(old!)).Version.Index, ...(await inspect(old!)).Spec, Mode: { Replicated: { Replicas: 1 } } });
    // The next controller runs another version of it: the old service goes, its own stays.
    const next = another({ env: { GATEWAY_URL: 'http://changed:8080' } });
    const nextSpec = { ...spec, env: { GATEWAY_URL: 'http://gateway:8080' } };
    await next.deploy(nextSpec);
    const [now, ...more] = await versionsOf('crashy');
    expect(more).toEqual([]);
    expect(now).not.toBe(old);
    expect((await inspect(now!)).Spec.TaskTemplate.ContainerSpec.Env).toContain('GATEWAY_URL=http://changed:8080');
    await next.remove(nextSpec);
    expect(await versionsOf('crashy')).toEqual([]);
  }, 60_000);

  it('leaves the warm services alone when another process of the deployment starts and stops', async () => {
    // Break it catches: start-up cleanup or close() removing the warm services (a standby
    // controller taking over runs the same versions, and their tasks, on).
    const spec = { ...specs.get('sleepy')!, secrets: ['api-key'] };
    await runtime.deploy(spec);
    const before = (await servicesOf(`${SWARM_OWNER_LABEL}=${prefix}`)).map((s) => s.ID).sort();
    expect(before).not.toEqual([]);
    const second = another();
    await second.check();
    expect(await second.removeLeftovers()).toBe(0);
    await second.deploy({ ...spec });
    await second.close();
    expect((await servicesOf(`${SWARM_OWNER_LABEL}=${prefix}`)).map((s) => s.ID).sort()).toEqual(before);
  });

  it('removes the job services of controllers that are gone, never those of one still waiting', async () => {
    // Break it catches: cleanup removing a live controller's one-shot call in flight, or keeping a dead controller's job.
    const spec = specs.get('once')!;
    await runtime.deploy(spec);
    const image = ((await docker.getImage(spec.image!).inspect()) as { Id: string }).Id;
    const context = { prefix, network: NETWORK, options: { env: {}, secret: () => undefined } };
    const job = { token: 'ffffffffffffffff', invocationUrl: 'http://127.0.0.1:1/invocations/none', controller: 'gone-controller' };
    await docker.createService(jobServiceSpec(context, spec, { image, secrets: [] }, job) as unknown as Docker.CreateServiceOptions);
    const invocation = { callId: 'c3', request: { method: 'GET', path: '/', query: { sleep: '6000' }, headers: {}, body: '' } };
    const call = runtime.runOnce(spec, invocation, AbortSignal.timeout(60_000));
    const jobs = async () => (await servicesOf(`${SWARM_FUNCTION_LABEL}=once`)).map((s) => s.Spec.Labels[LABELS.managedBy]).sort();
    await waitUntil(async () => (await jobs()).length === 2, { what: 'both job services' });
    // Knowing nothing of the others, a starting process removes nothing of theirs.
    expect(await another().removeLeftovers()).toBe(0);
    expect(await another({ isOwnerAlive: async (owner) => owner !== 'gone-controller' }).removeLeftovers()).toBe(1);
    expect(await jobs()).toEqual([runtime.controller]);
    expect((await call).status).toBe(200);
    expect(await jobs()).toEqual([]);
  }, 90_000);

  it("removes everything of its prefix when told to, and no one else's", async () => {
    // Break it catches: a teardown that leaves services or secrets behind, or takes another prefix's.
    const other = new SwarmRuntime({ env: {}, secret: () => undefined, network: NETWORK, prefix: `${prefix}-other`, callback: { host: '127.0.0.1', port: 1 } });
    await other.deploy(specs.get('crashy')!);
    await runtime.deploy({ ...specs.get('sleepy')!, secrets: ['api-key'] });
    const ours = await servicesOf(`${SWARM_OWNER_LABEL}=${prefix}`);
    expect(await docker.listSecrets(owned(`${SWARM_OWNER_LABEL}=${prefix}`))).not.toEqual([]);
    expect(await another().removeAll()).toBe(ours.length);
    expect(await docker.listServices(owned(`${SWARM_OWNER_LABEL}=${prefix}`))).toEqual([]);
    expect(await docker.listSecrets(owned(`${SWARM_OWNER_LABEL}=${prefix}`))).toEqual([]);
    expect(await docker.listServices(owned(`${SWARM_OWNER_LABEL}=${prefix}-other`))).toHaveLength(1);
    await other.removeAll();
    expect(await docker.listServices(owned(`${SWARM_OWNER_LABEL}=${prefix}-other`))).toEqual([]);
  }, 60_000);
});
