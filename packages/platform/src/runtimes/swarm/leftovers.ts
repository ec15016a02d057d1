import type Docker from 'dockerode';
import { LABELS } from '../../labels.js';
import { goneOwners, type OwnerAlive } from '../controller-id.js';
import { SWARM_OWNER_LABEL } from './spec.js';
import { hasEnded, listTasks, sleep } from './tasks.js';

/** A job that ended this long ago was given up by its controller, whoever that is. */
const FINISHED_GRACE_MS = 60_000;
/** An unused secret younger than this may be about to be used by a service being created. */
const SECRET_GRACE_MS = 10 * 60_000;

interface ServiceSummary {
  ID: string;
  Spec: {
    Name: string;
    Labels?: Record<string, string>;
    Mode: { ReplicatedJob?: object };
    TaskTemplate?: { ContainerSpec?: { Secrets?: Array<{ SecretID: string }> } };
  };
}

const byOwner = (prefix: string) => ({ filters: JSON.stringify({ label: [`${SWARM_OWNER_LABEL}=${prefix}`] }) });

/**
 * Removes what no live process of the deployment (`prefix`) will remove: one-shot job services
 * whose controller is gone (as `isOwnerAlive` tells) or that ended long ago, the finished job
 * containers Swarm keeps on this node, and secrets no service uses that are not new. Never a warm
 * function's service: those are shared by every process, and only `removeAll` takes them away.
 */
export async function removeLeftovers(
  docker: Docker,
  options: { prefix: string; controller: string; isOwnerAlive: OwnerAlive; inFlight: ReadonlySet<string> },
): Promise<number> {
  const services = (await docker.listServices(byOwner(options.prefix))) as ServiceSummary[];
  const gone = goneOwners(options.controller, options.isOwnerAlive);
  const removed: string[] = [];
  for (const service of services) {
    if (!service.Spec.Mode.ReplicatedJob || options.inFlight.has(service.ID) || options.inFlight.has(service.Spec.Name)) continue;
    const owner = service.Spec.Labels?.[LABELS.managedBy];
    if (!(await gone(owner)) && !(await endedLongAgo(docker, service.ID))) continue;
    await docker
      .getService(service.ID)
      .remove()
      .then(() => removed.push(service.ID))
      .catch(() => {});
  }
  await removeEndedContainers(docker, options.prefix);
  const live = new Set(
    [...services.filter((s) => !removed.includes(s.ID))].flatMap((s) => s.Spec.TaskTemplate?.ContainerSpec?.Secrets ?? []).map((s) => s.SecretID),
  );
  const secrets = await docker.listSecrets(byOwner(options.prefix));
  const unused = secrets.filter((s) => !live.has(s.ID) && Date.now() - Date.parse(s.CreatedAt ?? '') > SECRET_GRACE_MS);
  // The Engine refuses to remove a secret a service still uses: a service made meanwhile keeps it.
  await Promise.all(
    unused.map((s) =>
      docker
        .getSecret(s.ID)
        .remove()
        .catch(() => {}),
    ),
  );
  return removed.length;
}

async function endedLongAgo(docker: Docker, serviceId: string): Promise<boolean> {
  const tasks = await listTasks(docker, serviceId).catch(() => undefined);
  if (!tasks || tasks.length === 0 || !tasks.every(hasEnded)) return false;
  return tasks.every((t) => Date.now() - Date.parse(t.Status.Timestamp ?? '') > FINISHED_GRACE_MS);
}

/** Swarm keeps the containers of ended job tasks after their service is gone: those on this node go. */
async function removeEndedContainers(docker: Docker, prefix: string): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [`${SWARM_OWNER_LABEL}=${prefix}`], status: ['exited', 'created', 'dead'] } });
  const services = new Set(((await docker.listServices(byOwner(prefix))) as ServiceSummary[]).map((s) => s.ID));
  await Promise.all(
    containers
      .filter((c) => !services.has(c.Labels['com.docker.swarm.service.id'] ?? ''))
      .map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => {}),
      ),
  );
}

/**
 * Removes everything of a deployment (`prefix`), whoever started it: every service, warm or
 * job, then their task containers on this node and their secrets. For taking the whole
 * deployment down (as `stack rm` does by the same label), never for one process stopping.
 */
export async function removeAll(docker: Docker, prefix: string): Promise<number> {
  const services = (await docker.listServices(byOwner(prefix))) as ServiceSummary[];
  await Promise.all(
    services.map((s) =>
      docker
        .getService(s.ID)
        .remove()
        .catch(() => {}),
    ),
  );
  // Swarm stops and removes the tasks' containers in its own time; secrets go once nothing uses them.
  for (let attempt = 0; attempt < 80; attempt++) {
    await removeEndedContainers(docker, prefix);
    const containers = await docker.listContainers({ all: true, filters: { label: [`${SWARM_OWNER_LABEL}=${prefix}`] } });
    const secrets = await docker.listSecrets(byOwner(prefix));
    await Promise.all(
      secrets.map((s) =>
        docker
          .getSecret(s.ID)
          .remove()
          .catch(() => {}),
      ),
    );
    if (containers.length === 0 && secrets.length === 0) break;
    await sleep(250);
  }
  return services.length;
}
