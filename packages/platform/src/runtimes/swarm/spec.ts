import { createHash } from 'node:crypto';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import { LABELS } from '../../labels.js';
import { functionEnv } from '../function-env.js';
import { taskLockdown } from '../lockdown.js';
import type { RuntimeOptions } from '../runtime.js';
import { essentials } from './deploy.js';

/**
 * Labels of the services (and their task containers) this runtime creates. They differ from the
 * docker runtime's on purpose: neither runtime ever removes what the other started.
 */
export const SWARM_OWNER_LABEL = LABELS.swarmOwner;
export const SWARM_FUNCTION_LABEL = LABELS.swarmFunction;
/** The port a warm task serves on, at its address on the network. */
export const PORT = 8080;
export const SECOND_NS = 1_000_000_000;

/** A Swarm secret as a task sees it: a file readable by the function's user only. */
export interface SecretRef {
  SecretID: string;
  SecretName: string;
  File: { Name: string; UID: string; GID: string; Mode: number };
}

/** What deploy found for a function: its image by ID and its Swarm secrets. */
export interface Deployed {
  image: string;
  secrets: SecretRef[];
}

/** Where a function's services go and what they may see, the same for every process of one deployment. */
export interface SpecContext {
  /** Prefix of the service names and value of the owner label, e.g. `shop-fn`. */
  prefix: string;
  network: string;
  options: RuntimeOptions;
}

export type ServiceSpec = ReturnType<typeof warmServiceSpec>;

export const serviceName = (prefix: string, fn: string, suffix = '') => `${prefix}-${fn}${suffix}`.slice(0, 63);

/**
 * A warm task's instance id: what the task calls itself (FN_INSTANCE, filled in by Swarm from the
 * placeholders) and what the platform names in each call to it, so a task that took a gone task's
 * address refuses that task's calls.
 */
export const taskInstanceId = (fn: string, slot: number | string, taskId: string) => `${fn}-${slot}-${taskId}`;

/** The owner and function labels of a function's services, task containers and secrets. */
export const ownerLabels = (prefix: string, fn: string): Record<string, string> => ({ [SWARM_OWNER_LABEL]: prefix, [SWARM_FUNCTION_LABEL]: fn });

/**
 * A warm function's service for one version of it: named and labelled by a hash of what it runs
 * (image, env, secrets, limits…), so deploying the same function again finds the same service,
 * and an update gets a service of its own beside the old one, whose tasks finish their calls
 * before it goes. Nothing in it belongs to one process. Created at zero replicas.
 */
export function warmServiceSpec(context: SpecContext, fn: FunctionSpec, deployed: Deployed) {
  const settings = {
    FN_MODE: 'warm',
    FN_INSTANCE: taskInstanceId(fn.name, '{{.Task.Slot}}', '{{.Task.ID}}'),
    PORT: String(PORT),
    FN_HOST: '0.0.0.0',
    FN_MAX_INFLIGHT: String(fn.maxConcurrency),
    FN_DRAIN_SECONDS: String(fn.timeoutSeconds),
  };
  const spec = {
    Labels: { ...ownerLabels(context.prefix, fn.name), [LABELS.swarmMode]: 'warm' } as Record<string, string>,
    TaskTemplate: taskTemplate(context, fn, deployed, settings, { Condition: 'on-failure', Delay: SECOND_NS / 10, MaxAttempts: 0 }),
    Mode: { Replicated: { Replicas: 0 } } as { Replicated?: { Replicas: number }; ReplicatedJob?: object },
    EndpointSpec: { Mode: 'dnsrr' },
  };
  // The network by name (both ways): the hash must not depend on the network's id on this engine.
  const essential = essentials(spec, { name: context.network, id: context.network });
  const version = createHash('sha256').update(essential).digest('hex').slice(0, 8);
  return {
    Name: `${serviceName(context.prefix, fn.name).slice(0, 54)}-${version}`,
    ...spec,
    Labels: { ...spec.Labels, [LABELS.swarmVersion]: version } as Record<string, string>,
  };
}

/**
 * One one-shot call's `replicated-job` service. It carries the id of the controller that waits
 * for its answer: another process removes it only once that controller is gone.
 */
export function jobServiceSpec(
  context: SpecContext,
  fn: FunctionSpec,
  deployed: Deployed,
  job: { token: string; invocationUrl: string; controller: string },
): ServiceSpec {
  const settings = { FN_MODE: 'oneshot', FN_INSTANCE: `${fn.name}-job-{{.Node.Hostname}}`, FN_INVOCATION_URL: job.invocationUrl };
  return {
    Name: serviceName(context.prefix, fn.name, `-${job.token.slice(0, 12)}`),
    Labels: { ...ownerLabels(context.prefix, fn.name), [LABELS.swarmMode]: 'oneshot', [LABELS.managedBy]: job.controller },
    TaskTemplate: taskTemplate(context, fn, deployed, settings, { Condition: 'none' }),
    Mode: { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } },
    EndpointSpec: { Mode: 'dnsrr' },
  };
}

/** Locked down as far as Swarm allows: read-only root, small tmpfs, no capabilities, limits, non-root. */
function taskTemplate(context: SpecContext, fn: FunctionSpec, deployed: Deployed, settings: Record<string, string>, restart: object) {
  const env = functionEnv(fn, context.options, settings, { includeSecrets: false });
  const locked = taskLockdown(fn);
  return {
    ContainerSpec: {
      // By ID: a task then never asks a registry for the image (there may be none).
      Image: deployed.image,
      Labels: ownerLabels(context.prefix, fn.name),
      Env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
      ...locked.containerSpec,
      Secrets: deployed.secrets,
      StopGracePeriod: (fn.timeoutSeconds + 5) * SECOND_NS,
    },
    Resources: locked.resources,
    RestartPolicy: restart,
    Networks: [{ Target: context.network }],
    LogDriver: locked.logDriver,
  };
}
