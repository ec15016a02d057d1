import type Docker from 'dockerode';
import { invokeTokenOf, isInvokeTokenEnv, type ServiceSpec, withInvokeToken } from './spec.js';
import { sleep } from './tasks.js';

/** A service as the Engine lists it (its spec as stored: networks by ID, defaults filled in). */
interface ServiceInfo {
  ID: string;
  Version: { Index: number };
  // biome-ignore lint/suspicious/noExplicitAny: the Engine's spec, read field by field in essentials()
  Spec: Record<string, any> & { Name: string; Mode: ServiceSpec['Mode'] };
}

/** The functions' network by name (as a spec built here names it) and by ID (as the Engine stores it). */
export interface NetworkNames {
  name: string;
  id: string;
}

export type DeployOutcome = 'created' | 'updated' | 'unchanged';

/**
 * Makes a warm function's service match `desired`: created when missing, left alone when equal
 * (its name holds a hash of the spec, so a deploy of the same version finds it so), brought back
 * in place, replicas kept, when someone changed what matters (at the Version index read just
 * before, read again if it changed in between). Two creating it at once end with one service.
 * An existing service keeps its instances' credential (a new one would restart every task, whose
 * callers hold the old one); resolves with the credential the service's tasks have.
 */
export async function deployService(
  docker: Docker,
  desired: ServiceSpec,
  network: NetworkNames,
): Promise<{ outcome: DeployOutcome; invokeToken: string | undefined }> {
  for (let attempt = 0; ; attempt++) {
    const existing = await findService(docker, desired.Name);
    try {
      if (!existing) {
        await docker.createService(desired as unknown as Docker.CreateServiceOptions);
        return { outcome: 'created', invokeToken: invokeTokenOf(desired) };
      }
      const kept = invokeTokenOf(existing.Spec);
      if (kept) desired = withInvokeToken(desired, kept);
      if (kept && essentials(existing.Spec, network) === essentials(desired, network)) return { outcome: 'unchanged', invokeToken: kept };
      await docker.getService(existing.ID).update({ version: existing.Version.Index, ...desired, Mode: existing.Spec.Mode });
      return { outcome: 'updated', invokeToken: invokeTokenOf(desired) };
    } catch (error) {
      // 409: created by another process in between; "update out of sequence": changed in between.
      const raced = (error as { statusCode?: number }).statusCode === 409 || /out of sequence/i.test((error as Error).message);
      if (!raced || attempt >= 5) throw error;
      await sleep(50 * (attempt + 1));
    }
  }
}

async function findService(docker: Docker, name: string): Promise<ServiceInfo | undefined> {
  const found = (await docker.listServices({ filters: JSON.stringify({ name: [name] }) })) as ServiceInfo[];
  // The name filter matches prefixes too.
  return found.find((s) => s.Spec.Name === name);
}

/**
 * What of a service's spec this runtime sets and an update must bring back: image, env,
 * secrets, labels, limits, lockdown, restart policy, network, logs and endpoint, in a canonical
 * form (the Engine stores a network by ID, and keys in its own order). Replicas are left out, and
 * the instances' credential, which each spec built has afresh (see warmServiceSpec).
 */
// biome-ignore lint/suspicious/noExplicitAny: a spec as built here or as the Engine stored it
export function essentials(spec: Record<string, any>, network: NetworkNames): string {
  const template = spec.TaskTemplate ?? {};
  const container = template.ContainerSpec ?? {};
  return canonical({
    labels: spec.Labels ?? {},
    image: container.Image,
    env: (container.Env ?? []).filter((entry: string) => !isInvokeTokenEnv(entry)).sort(),
    containerLabels: container.Labels ?? {},
    user: container.User,
    readOnly: container.ReadOnly ?? false,
    init: container.Init ?? false,
    capabilityDrop: container.CapabilityDrop ?? [],
    mounts: container.Mounts ?? [],
    secrets: (container.Secrets ?? []).map((s: { SecretName: string; File: object }) => ({ name: s.SecretName, file: s.File })),
    stopGracePeriod: container.StopGracePeriod,
    resources: template.Resources ?? {},
    restartPolicy: template.RestartPolicy ?? {},
    networks: (template.Networks ?? []).map((n: { Target: string }) => (n.Target === network.id ? network.name : n.Target)),
    logDriver: template.LogDriver ?? {},
    endpointMode: spec.EndpointSpec?.Mode ?? 'vip',
  });
}

/** JSON with object keys sorted, so equal values give equal strings. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}

/** Removes a service (Swarm stops its tasks with SIGTERM, so calls in flight finish); one already gone is no error. */
export async function removeService(docker: Docker, idOrName: string): Promise<void> {
  await docker
    .getService(idOrName)
    .remove()
    .catch((error: { statusCode?: number }) => {
      if (error.statusCode !== 404) throw error;
    });
}
