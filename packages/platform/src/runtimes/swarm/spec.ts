import { createHash } from 'node:crypto';
import { INVOKE_TOKEN_ENV } from '@platform/function-contract';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import { LABELS } from '../../labels.js';
import { functionEnv } from '../function-env.js';
import { taskLockdown } from '../lockdown.js';
import { newInvokeToken, type RuntimeOptions } from '../runtime.js';
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

/** Longest name of a Swarm object (a service name is a DNS label). */
export const SWARM_NAME_MAX = 63;

/**
 * A name of at most `max` characters: the name itself when it fits, else its start and a hash of
 * all of it, so that two long names differing anywhere (e.g. at the end) stay two names.
 */
export function boundedName(name: string, max = SWARM_NAME_MAX): string {
  if (name.length <= max) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 10);
  return `${name.slice(0, max - hash.length - 1)}-${hash}`;
}

export const serviceName = (prefix: string, fn: string, suffix = '') => boundedName(`${prefix}-${fn}${suffix}`);

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
 *
 * Its instances' credential (INVOKE_TOKEN_ENV): every task of a service runs one spec, so the
 * credential is one per service version, not per task. It stays out of the hash and of what an
 * update compares (see essentials): the service keeps the one it was created with, which a
 * controller taking over reads back from the spec (see invokeTokenOf). It is an environment value,
 * unlike secrets: it opens only this function's own instances, and whoever can read a service's
 * spec commands the Swarm anyway.
 */
export function warmServiceSpec(context: SpecContext, fn: FunctionSpec, deployed: Deployed, invokeToken = newInvokeToken()) {
  const settings = {
    FN_MODE: 'warm',
    FN_INSTANCE: taskInstanceId(fn.name, '{{.Task.Slot}}', '{{.Task.ID}}'),
    [INVOKE_TOKEN_ENV]: invokeToken,
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
    Name: `${boundedName(`${context.prefix}-${fn.name}`, SWARM_NAME_MAX - version.length - 1)}-${version}`,
    ...spec,
    Labels: { ...spec.Labels, [LABELS.swarmVersion]: version } as Record<string, string>,
  };
}

const TOKEN_PREFIX = `${INVOKE_TOKEN_ENV}=`;
/** Whether an `Env` entry is the instances' credential. */
export const isInvokeTokenEnv = (entry: string) => entry.startsWith(TOKEN_PREFIX);

/** The instances' credential in a service's spec (as built here or as the Engine stores it). */
// biome-ignore lint/suspicious/noExplicitAny: a spec as built here or as the Engine stored it
export function invokeTokenOf(spec: Record<string, any>): string | undefined {
  const env: string[] = spec.TaskTemplate?.ContainerSpec?.Env ?? [];
  return env.find(isInvokeTokenEnv)?.slice(TOKEN_PREFIX.length) || undefined;
}

/** The spec with this credential for its instances instead of its own. */
export function withInvokeToken(spec: ServiceSpec, invokeToken: string): ServiceSpec {
  const container = spec.TaskTemplate.ContainerSpec;
  const Env = [...container.Env.filter((entry) => !isInvokeTokenEnv(entry)), `${TOKEN_PREFIX}${invokeToken}`];
  return { ...spec, TaskTemplate: { ...spec.TaskTemplate, ContainerSpec: { ...container, Env } } };
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
