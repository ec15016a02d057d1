import { hostname } from 'node:os';
import type { Runtime, RuntimeOptions } from './runtime.js';
import { ProcessRuntime } from './process.js';
import { DockerRuntime } from './docker.js';

export type RuntimeKind = 'process' | 'docker';

/** Picks the runtime by name, as the queue and event bus are picked by URL scheme. */
export async function createRuntime(
  kind: RuntimeKind,
  options: RuntimeOptions & { dockerNetwork: string; log: (message: string) => void },
): Promise<Runtime> {
  if (kind === 'process') return new ProcessRuntime(options);
  // One gateway per host name: its containers carry it, so a restart finds what a crash left.
  const runtime = new DockerRuntime({ ...options, network: options.dockerNetwork, owner: hostname() });
  const removed = await runtime.removeLeftovers();
  if (removed > 0) options.log(`removed ${removed} function container(s) left behind by an earlier run`);
  return runtime;
}
