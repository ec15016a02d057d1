import type Docker from 'dockerode';

/** A Swarm task as the Engine lists it, the fields this runtime reads. */
export interface SwarmTask {
  ID: string;
  ServiceID?: string;
  NodeID?: string;
  Slot?: number;
  DesiredState: string;
  Status: { State: string; Timestamp?: string; Err?: string; ContainerStatus?: { ContainerID?: string; ExitCode?: number } };
  NetworksAttachments?: Array<{ Network: { Spec: { Name: string } }; Addresses?: string[] }>;
}

/** Task states from creation until running; anything else means the task is gone or going. */
const ALIVE = new Set(['new', 'allocated', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']);

/** A task that runs or is on its way to, and is meant to. */
export const isAlive = (task: SwarmTask) => task.DesiredState === 'running' && ALIVE.has(task.Status.State);

/** A task that ran and stopped (completed, failed, shut down, rejected…): it will not answer any more. */
export const hasEnded = (task: SwarmTask) => !ALIVE.has(task.Status.State);

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function listTasks(docker: Docker, service: string): Promise<SwarmTask[]> {
  return (await docker.listTasks({ filters: JSON.stringify({ service: [service] }) })) as SwarmTask[];
}

/** The task's address on the network: where its health check and calls go. */
export function taskAddress(task: SwarmTask, network: string): string | undefined {
  const attachment = task.NetworksAttachments?.find((a) => a.Network.Spec.Name === network);
  return attachment?.Addresses?.[0]?.split('/')[0];
}

/** Kills the task's container if it runs on this node (the only engine this runtime talks to). */
export async function killTaskContainer(docker: Docker, task: SwarmTask | undefined, nodeId: string | undefined): Promise<void> {
  const container = task?.Status.ContainerStatus?.ContainerID;
  if (container && task?.NodeID === nodeId)
    await docker
      .getContainer(container)
      .kill()
      .catch(() => {});
}

/** Removes the containers of these tasks on this node: Swarm keeps a finished job task's container even once its service is gone. */
export async function removeTaskContainers(docker: Docker, tasks: SwarmTask[], nodeId: string | undefined): Promise<void> {
  await Promise.all(
    tasks
      .filter((t) => t.NodeID === nodeId && t.Status.ContainerStatus?.ContainerID)
      .map((t) =>
        docker
          .getContainer(t.Status.ContainerStatus!.ContainerID!)
          .remove({ force: true })
          .catch(() => {}),
      ),
  );
}
