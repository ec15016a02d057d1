// The swarm runtime against this machine's Docker Engine in Swarm mode (a single-node Swarm is
// initialised when the engine is in none; if that cannot be done the tests fail, never skip).
// Warm instances are served over the overlay network, which the host running these tests cannot
// reach: scaling, calls and killed tasks are tested in the deployed stack (e2e/stack-tests).
// Here: the services and secrets it makes, one-shot calls as job services, and what it removes.
import { execFileSync } from 'node:child_process';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFunctions, type FunctionSpec } from '@platform/function-contract/manifest';
import { MANAGED_LABEL } from '@platform/core/runtimes/docker';
import { SWARM_FUNCTION_LABEL, SWARM_OWNER_LABEL, SwarmRuntime } from '@platform/core/runtimes/swarm';
import { fixtureFunctions } from './harness.js';
import { prepareDocker } from './docker-network.js';

const docker = new Docker();
const NETWORK = 'voting-test-overlay';
const prefix = `t${process.pid}`;
const owned = (label: string) => ({ filters: JSON.stringify({ label: [label] }) });

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
      secret: (name) => (name === 'api-key' ? 'swarm-test-secret' : undefined),
      network: NETWORK,
      prefix,
      callback: { host, port: 18000 + (process.pid % 1000) },
    });
    await runtime.check();
  }, 180_000);
  afterAll(async () => {
    await runtime?.close();
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
    expect(service!.Spec.Name).toBe(`${prefix}-sleepy`);
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

  it("removes the services of its own prefix left by an earlier run, and no one else's", async () => {
    const other = new SwarmRuntime({ env: {}, secret: () => undefined, network: NETWORK, prefix: `${prefix}-other`, callback: { host: '127.0.0.1', port: 1 } });
    await other.deploy(specs.get('crashy')!);
    // A later run with the first prefix (after a crash) cleans up its own.
    const restarted = new SwarmRuntime({ env: {}, secret: () => undefined, network: NETWORK, prefix, callback: { host: '127.0.0.1', port: 1 } });
    expect(await restarted.removeLeftovers()).toBe(1);
    expect(await docker.listServices(owned(`${SWARM_OWNER_LABEL}=${prefix}`))).toEqual([]);
    expect(await docker.listServices(owned(`${SWARM_OWNER_LABEL}=${prefix}-other`))).toHaveLength(1);
    await other.close();
    expect(await docker.listServices(owned(`${SWARM_OWNER_LABEL}=${prefix}-other`))).toEqual([]);
  });
});
