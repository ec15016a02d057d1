import { describe, expect, it } from 'vitest';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import { essentials } from '../src/runtimes/swarm/deploy.js';
import { warmServiceSpec } from '../src/runtimes/swarm/spec.js';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { goneOwners, newControllerId, sameHostLiveness } from '../src/runtimes/controller-id.js';

const fn = { name: 'f', memoryMb: 64, timeoutSeconds: 5, maxConcurrency: 2, env: { GREETING: 'hi' }, secrets: ['key'] } as unknown as FunctionSpec;
const network = { name: 'fn-net', id: 'o62gncdi3e4z4auequqtg6w6y' };
const context = { prefix: 'shop-fn', network: network.name, options: { env: {}, secret: () => 'v' } };
const deployed = {
  image: 'sha256:aaa',
  secrets: [{ SecretID: 'id1', SecretName: 'shop-fn-f-key-0123456789', File: { Name: 'key', UID: '1000', GID: '1000', Mode: 0o400 } }],
};
const spec = () => warmServiceSpec(context, fn, deployed);

/** The spec as the Engine stores it: the network by ID, keys in another order, fields of its own, other replicas. */
function stored() {
  const { TaskTemplate, ...rest } = structuredClone(spec());
  const { ContainerSpec, ...template } = TaskTemplate;
  const reversed = Object.fromEntries(Object.entries(ContainerSpec).reverse()) as typeof ContainerSpec;
  return {
    ...rest,
    Mode: { Replicated: { Replicas: 3 } },
    TaskTemplate: {
      Runtime: 'container',
      ForceUpdate: 0,
      ...template,
      Networks: [{ Target: network.id }],
      ContainerSpec: { Isolation: 'default', ...reversed },
    },
  };
}

// Break it catches: a deploy that updates the shared service when nothing changed (restarting every task of every
// process), or leaves it stale when its image, env, secrets, limits or labels changed.
describe('what a warm service update compares', () => {
  it('takes the spec as the Engine stores it for the same spec, whatever the replicas', () => {
    expect(essentials(stored(), network)).toBe(essentials(spec(), network));
  });

  it.each([
    ['image', (s: ReturnType<typeof stored>) => (s.TaskTemplate.ContainerSpec.Image = 'sha256:bbb')],
    ['env', (s: ReturnType<typeof stored>) => s.TaskTemplate.ContainerSpec.Env.push('GREETING=bye')],
    ['secrets', (s: ReturnType<typeof stored>) => (s.TaskTemplate.ContainerSpec.Secrets[0]!.SecretName = 'shop-fn-f-key-9876543210')],
    ['limits', (s: ReturnType<typeof stored>) => (s.TaskTemplate.Resources.Limits.MemoryBytes *= 2)],
    ['labels', (s: ReturnType<typeof stored>) => (s.Labels['serverless-platform.swarm.function'] = 'g')],
    ['network', (s: ReturnType<typeof stored>) => (s.TaskTemplate.Networks = [{ Target: 'another' }])],
  ])('tells a changed %s', (_what, change) => {
    const changed = stored();
    change(changed);
    expect(essentials(changed, network)).not.toBe(essentials(spec(), network));
  });
});

describe('controller ids', () => {
  // Break it catches: an id that is the host name alone, so two controllers on one host take each other's containers for their own.
  it('differ from one start to the next on the same host, and name the host and process', () => {
    const [a, b] = [newControllerId('host-1'), newControllerId('host-1')];
    expect(a).not.toBe(b);
    expect(a).toMatch(new RegExp(`^host-1-${process.pid}-[0-9a-f]{8}$`));
  });

  // Break it catches: cleanup that takes an owner it cannot ask about (or whose check fails) for gone.
  it('count as gone only this one and those said to be gone', async () => {
    const asked: string[] = [];
    const gone = goneOwners('me', async (owner) => {
      asked.push(owner);
      if (owner === 'broken') throw new Error('no answer');
      return owner !== 'dead';
    });
    expect(await Promise.all(['me', 'dead', 'live', 'broken', undefined, '', 'dead'].map(gone))).toEqual([true, true, false, false, false, false, true]);
    expect(asked).toEqual(['dead', 'live', 'broken']);
    expect(await goneOwners('me')('other')).toBe(false);
  });

  // Break it catches: a restarted controller that keeps what its crashed predecessor on this host left running
  // (or one that removes what a live process on this host or any other host runs).
  it('are gone on this host once their process is, or when they are an earlier run of this very process', async () => {
    const ended = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(ended.stdout);
    expect(await sameHostLiveness(`${hostname()}-${deadPid}-0a1b2c3d`)).toBe(false);
    expect(await sameHostLiveness(`${hostname()}-${process.pid}-0a1b2c3d`)).toBe(false);
    expect(await sameHostLiveness(`${hostname()}-${process.ppid}-0a1b2c3d`)).toBe(true);
    expect(await sameHostLiveness(`another-host-${deadPid}-0a1b2c3d`)).toBe(true);
    expect(await sameHostLiveness('not-an-id')).toBe(true);
  });
});
