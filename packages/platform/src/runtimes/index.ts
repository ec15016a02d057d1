import { hostname } from 'node:os';
import type { Runtime, RuntimeOptions } from './runtime.js';
import { ProcessRuntime } from './process.js';
import { DockerRuntime } from './docker.js';
import { SwarmRuntime } from './swarm.js';

export type RuntimeKind = 'process' | 'docker' | 'swarm';

/** Picks the runtime by name, as the queue and event bus are picked by URL scheme. */
export async function createRuntime(
  kind: RuntimeKind,
  options: RuntimeOptions & {
    dockerNetwork: string;
    swarm?: { prefix: string; callbackPort: number };
    log: (message: string) => void;
  },
): Promise<Runtime> {
  if (kind === 'process') return new ProcessRuntime(options);
  if (kind === 'swarm') {
    // Job tasks reach this gateway where the functions do (GATEWAY_URL's host), on the callback port.
    const host = new URL(options.env.GATEWAY_URL ?? 'http://127.0.0.1').hostname;
    const { prefix, callbackPort } = options.swarm ?? { prefix: 'fn', callbackPort: 8082 };
    const runtime = new SwarmRuntime({ ...options, network: options.dockerNetwork, prefix, callback: { host, port: callbackPort } });
    await runtime.check();
    const removed = await runtime.removeLeftovers();
    if (removed > 0) options.log(`removed ${removed} function service(s) left behind by an earlier run`);
    return runtime;
  }
  // One gateway per host name: its containers carry it, so a restart finds what a crash left.
  const runtime = new DockerRuntime({ ...options, network: options.dockerNetwork, owner: hostname() });
  const removed = await runtime.removeLeftovers();
  if (removed > 0) options.log(`removed ${removed} function container(s) left behind by an earlier run`);
  return runtime;
}
