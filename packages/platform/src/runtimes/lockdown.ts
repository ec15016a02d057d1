import type Docker from 'dockerode';
import type { FunctionSpec } from '@platform/function-contract/manifest';

const MiB = 1024 * 1024;
const SECOND_NS = 1_000_000_000;

/**
 * How every function container is locked down, whichever runtime starts it: one definition,
 * written out below in the Engine's container shape and in Swarm's task shape.
 */
export const lockdown = {
  /** Not root: the images' own user. */
  user: '1000:1000',
  /** A PID 1 that forwards signals and reaps, so stops are quick. */
  init: true,
  readOnlyRoot: true,
  tmpBytes: 16 * MiB,
  /** Every Linux capability dropped. */
  capDrop: ['ALL'],
  /** Swarm 20.10's service API has no setting for it: tasks go without. */
  noNewPrivileges: true,
  cpus: 1,
  pids: 64,
  memoryBytes: (fn: FunctionSpec) => fn.memoryMb * MiB,
  logs: { 'max-size': '1m', 'max-file': '1' },
} as const;

/** The lockdown as a container's settings (docker runtime). */
export function containerLockdown(fn: FunctionSpec): Pick<Docker.ContainerCreateOptions, 'User'> & { HostConfig: Docker.HostConfig } {
  return {
    User: lockdown.user,
    HostConfig: {
      Init: lockdown.init,
      ReadonlyRootfs: lockdown.readOnlyRoot,
      Tmpfs: { '/tmp': `rw,noexec,nosuid,size=${lockdown.tmpBytes}` },
      CapDrop: [...lockdown.capDrop],
      SecurityOpt: lockdown.noNewPrivileges ? ['no-new-privileges'] : [],
      Memory: lockdown.memoryBytes(fn),
      MemorySwap: lockdown.memoryBytes(fn),
      NanoCpus: lockdown.cpus * SECOND_NS,
      PidsLimit: lockdown.pids,
      LogConfig: { Type: 'json-file', Config: { ...lockdown.logs } },
    },
  };
}

/** The lockdown as a Swarm task's settings (swarm runtime). */
export function taskLockdown(fn: FunctionSpec) {
  return {
    containerSpec: {
      User: lockdown.user,
      ReadOnly: lockdown.readOnlyRoot,
      Init: lockdown.init,
      CapabilityDrop: [...lockdown.capDrop],
      Mounts: [{ Type: 'tmpfs', Target: '/tmp', TmpfsOptions: { SizeBytes: lockdown.tmpBytes, Mode: 0o1777 } }],
    },
    resources: { Limits: { MemoryBytes: lockdown.memoryBytes(fn), NanoCPUs: lockdown.cpus * SECOND_NS, Pids: lockdown.pids } },
    logDriver: { Name: 'json-file', Options: { ...lockdown.logs } },
  };
}

/**
 * The image a function runs: only the one its manifest declares. With no declared image there is
 * nothing the runtime may run; no default name is guessed.
 */
export function declaredImage(fn: FunctionSpec): string {
  if (!fn.image) throw new Error(`function ${fn.name} declares no image in its manifest: the docker and swarm runtimes run declared images only`);
  return fn.image;
}
