import { describe, expect, it } from 'vitest';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import { containerLockdown, taskLockdown } from '../src/runtimes/lockdown.js';

// Break it catches: one runtime's container settings edited apart from the other's (a limit or a
// lockdown that holds for containers but not for Swarm tasks). The engines' own view of them is
// checked by docker-runtime.test.ts and the stack tests.
describe('the one lockdown of function containers', () => {
  const fn = { name: 'f', memoryMb: 96 } as FunctionSpec;
  const container = containerLockdown(fn);
  const task = taskLockdown(fn);

  it('gives containers and Swarm tasks the same user, root, capabilities and limits', () => {
    expect(task.containerSpec.User).toBe(container.User);
    expect(container.User).toBe('1000:1000');
    expect([container.HostConfig.ReadonlyRootfs, task.containerSpec.ReadOnly]).toEqual([true, true]);
    expect([container.HostConfig.Init, task.containerSpec.Init]).toEqual([true, true]);
    expect([container.HostConfig.CapDrop, task.containerSpec.CapabilityDrop]).toEqual([['ALL'], ['ALL']]);
    expect(container.HostConfig.Memory).toBe(96 * 1024 * 1024);
    expect(task.resources.Limits).toEqual({
      MemoryBytes: container.HostConfig.Memory,
      NanoCPUs: container.HostConfig.NanoCpus,
      Pids: container.HostConfig.PidsLimit,
    });
    expect(container.HostConfig.Tmpfs!['/tmp']).toContain(`size=${task.containerSpec.Mounts[0]!.TmpfsOptions.SizeBytes}`);
    expect(container.HostConfig.LogConfig!.Config).toEqual(task.logDriver.Options);
    expect(container.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
  });
});
