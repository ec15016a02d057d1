import Docker from 'dockerode';
import type { Runtime, RuntimeOptions } from './runtime.js';
import { newControllerId, sameHostLiveness, type OwnerAlive } from './controller-id.js';
import { ProcessRuntime } from './process.js';
import { DockerRuntime } from './docker.js';
import { ownAddress, SwarmRuntime } from './swarm/index.js';

export type RuntimeKind = 'process' | 'docker' | 'swarm';
export { newControllerId, type OwnerAlive } from './controller-id.js';

/** Picks the runtime by name, as the queue and event bus are picked by URL scheme. */
export async function createRuntime(
  kind: RuntimeKind,
  options: RuntimeOptions & {
    dockerNetwork: string;
    swarm?: { prefix: string; callbackPort: number };
    /** This process's controller id (default: a new one); what it starts carries it. */
    controllerId?: string;
    /** Whether another controller still runs (e.g. from the tier's member list). Default: what this host can tell (`sameHostLiveness`). */
    isOwnerAlive?: OwnerAlive;
    log: (message: string) => void;
  },
): Promise<Runtime> {
  if (kind === 'process') return new ProcessRuntime(options);
  const controller = options.controllerId ?? newControllerId();
  const isOwnerAlive = options.isOwnerAlive ?? sameHostLiveness;
  if (kind === 'swarm') {
    // Job tasks call back this very process: at its own address on the functions' network when it
    // runs in a container there, else where the functions reach the gateway (GATEWAY_URL's host).
    const docker = new Docker();
    const host = (await ownAddress(docker, options.dockerNetwork)) ?? new URL(options.env.GATEWAY_URL ?? 'http://127.0.0.1').hostname;
    const { prefix, callbackPort } = options.swarm ?? { prefix: 'fn', callbackPort: 8082 };
    const runtime = new SwarmRuntime({
      ...options,
      docker,
      network: options.dockerNetwork,
      prefix,
      controller,
      isOwnerAlive,
      callback: { host, port: callbackPort },
    });
    await runtime.check();
    const removed = await runtime.removeLeftovers();
    if (removed > 0) options.log(`removed ${removed} one-shot job service(s) left behind by controllers that are gone`);
    return runtime;
  }
  // Its containers carry this process's controller id, so a later one tells them from its own.
  const runtime = new DockerRuntime({ ...options, network: options.dockerNetwork, owner: controller, isOwnerAlive });
  const removed = await runtime.removeLeftovers();
  if (removed > 0) options.log(`removed ${removed} function container(s) left behind by controllers that are gone`);
  return runtime;
}
