/**
 * The Docker labels the platform puts on what it creates, in one place: the runtimes set them, and
 * cleanup, `stack rm` and tests find things by them.
 */
const prefix = 'serverless-platform';

export const LABELS = {
  /** The controller that owns a container (docker runtime) or a one-shot job service (swarm runtime). */
  managedBy: `${prefix}.managed-by`,
  /** The function a container, service or image serves. */
  function: `${prefix}.function`,
  /** swarm runtime: the owner (service name prefix) of services, task containers and secrets. */
  swarmOwner: `${prefix}.swarm.owner`,
  swarmFunction: `${prefix}.swarm.function`,
  /** swarm runtime: `warm` (a replicated service) or `oneshot` (a job). */
  swarmMode: `${prefix}.swarm.mode`,
  /** swarm runtime: the version of a warm function a service runs (a hash of its spec), one service per version. */
  swarmVersion: `${prefix}.swarm.version`,
} as const;
