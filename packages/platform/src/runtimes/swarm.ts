import { createHash } from 'node:crypto';
import Docker from 'dockerode';
import type { FunctionResponse, Invocation } from '@platform/function-contract';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import type { Instance, Runtime, RuntimeOptions } from './runtime.js';
import { functionEnv } from './function-env.js';
import { declaredImage, taskLockdown } from './lockdown.js';
import { waitForHealth } from './net.js';
import { JobDesk } from './swarm-jobs.js';
import { InvocationError } from '../errors.js';
import { LABELS } from '../labels.js';

/**
 * Labels of the services (and their task containers) this runtime creates. They differ from the
 * docker runtime's on purpose: neither runtime ever removes what the other started.
 */
export const SWARM_OWNER_LABEL = LABELS.swarmOwner;
export const SWARM_FUNCTION_LABEL = LABELS.swarmFunction;
const PORT = 8080;
const SECOND_NS = 1_000_000_000;

export interface SwarmRuntimeOptions extends RuntimeOptions {
  docker?: Docker;
  /** The overlay network the function tasks join: the one network they are on. */
  network: string;
  /** Prefix of the function services' names and value of their owner label, e.g. `shop-fn`. */
  prefix: string;
  /** Where one-shot job tasks fetch their invocation and post their response (this gateway, seen from the network). */
  callback: { host: string; port: number; listen?: string };
  log?: (message: string) => void;
}

/** Task states from creation until running; anything else means the task is gone or going. */
const ALIVE = new Set(['new', 'allocated', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']);

interface SwarmTask {
  ID: string;
  NodeID?: string;
  Slot?: number;
  DesiredState: string;
  Status: { State: string; Err?: string; ContainerStatus?: { ContainerID?: string; ExitCode?: number } };
  NetworksAttachments?: Array<{ Network: { Spec: { Name: string } }; Addresses?: string[] }>;
}

interface SwarmInstance extends Instance {
  url: string;
  taskId: string;
  /** Answered its health check: only then may it take over another task (see settle). */
  ready: boolean;
  stopping: boolean;
  done: () => void;
}

/** One warm function's service: replicas wanted, and which task serves which pool instance. */
interface ServiceState {
  fn: FunctionSpec;
  name: string;
  desired: number;
  instances: Set<SwarmInstance>;
  /** Tasks being claimed by a starting instance. */
  claiming: Set<string>;
  starting: number;
  /** Replica updates, one at a time. */
  updates: Promise<void>;
  watching: boolean;
  tasks: SwarmTask[];
  /** Resolved on every poll of the tasks. */
  polled: Array<() => void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const alive = (task: SwarmTask) => task.DesiredState === 'running' && ALIVE.has(task.Status.State);

/**
 * Functions as Swarm services. A warm function is a replicated service created at zero
 * replicas: the first call scales it up and waits for a task to answer its health check, more
 * replicas follow under load up to the manifest's maxInstances, and it goes back to zero when
 * idle. Calls go straight to the tasks' addresses on the overlay network. A one-shot function
 * runs as a `replicated-job` service per call; having no stdin, its task fetches the invocation
 * from this runtime and posts the response back (FN_INVOCATION_URL). Secrets are Swarm secrets,
 * never environment values in a service's spec.
 */
export class SwarmRuntime implements Runtime {
  readonly kind = 'swarm';
  private readonly docker: Docker;
  private readonly services = new Map<string, ServiceState>();
  private readonly images = new Map<string, string>();
  private readonly secretRefs = new Map<string, Array<{ SecretID: string; SecretName: string; File: object }>>();
  private readonly jobServices = new Set<string>();
  private readonly desk: JobDesk;
  private nodeId?: string;
  private closed = false;

  constructor(private readonly options: SwarmRuntimeOptions) {
    this.docker = options.docker ?? new Docker();
    this.desk = new JobDesk(options.callback);
  }

  private serviceName(fn: FunctionSpec, suffix = ''): string {
    return `${this.options.prefix}-${fn.name}${suffix}`.slice(0, 63);
  }

  private labels(fn: FunctionSpec): Record<string, string> {
    return { [SWARM_OWNER_LABEL]: this.options.prefix, [SWARM_FUNCTION_LABEL]: fn.name };
  }

  /** Checks that this engine is a Swarm manager; throws with what to do otherwise. */
  async check(): Promise<void> {
    const info = (await this.docker.info()) as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean; NodeID?: string } };
    if (info.Swarm?.LocalNodeState !== 'active' || !info.Swarm.ControlAvailable) {
      throw new Error("RUNTIME=swarm needs a Swarm manager's Docker Engine (docker swarm init, and the gateway placed on a manager)");
    }
    this.nodeId = info.Swarm.NodeID;
  }

  /** Removes the services (and unused secrets) an earlier run with the same prefix left behind. */
  async removeLeftovers(): Promise<number> {
    const owned = { filters: JSON.stringify({ label: [`${SWARM_OWNER_LABEL}=${this.options.prefix}`] }) };
    const services = (await this.docker.listServices(owned)) as Array<{ ID: string }>;
    await Promise.all(
      services.map((s) =>
        this.docker
          .getService(s.ID)
          .remove()
          .catch(() => {}),
      ),
    );
    const secrets = await this.docker.listSecrets(owned);
    await Promise.all(
      secrets.map((s) =>
        this.docker
          .getSecret(s.ID)
          .remove()
          .catch(() => {}),
      ),
    );
    return services.length;
  }

  async deploy(fn: FunctionSpec): Promise<void> {
    const reference = declaredImage(fn);
    let image: string;
    try {
      image = ((await this.docker.getImage(reference).inspect()) as { Id: string }).Id;
    } catch {
      throw new Error(`function ${fn.name}: image ${reference} is not on the Docker Engine; build it with \`pnpm images\``);
    }
    // By ID: a task then never asks a registry for the image (there may be none); every node
    // running functions needs the same image (docker save | docker load keeps the ID).
    this.images.set(fn.name, image);
    this.secretRefs.set(fn.name, await this.ensureSecrets(fn));
    if (fn.mode === 'oneshot') return;
    const name = this.serviceName(fn);
    const existing = (await this.docker.listServices({ filters: JSON.stringify({ name: [name] }) })) as Array<{ ID: string; Spec: { Name: string } }>;
    for (const service of existing.filter((s) => s.Spec.Name === name))
      await this.docker
        .getService(service.ID)
        .remove()
        .catch(() => {});
    await this.docker.createService(this.serviceSpec(fn, 'warm') as unknown as Docker.CreateServiceOptions);
    this.services.set(fn.name, {
      fn,
      name,
      desired: 0,
      instances: new Set(),
      claiming: new Set(),
      starting: 0,
      updates: Promise.resolve(),
      watching: false,
      tasks: [],
      polled: [],
    });
  }

  /** A Swarm secret per declared secret and value (its name holds a hash of the value). */
  private async ensureSecrets(fn: FunctionSpec) {
    const refs = [];
    for (const secret of fn.secrets) {
      const value = this.options.secret(secret);
      if (value === undefined) throw new Error(`function ${fn.name} needs secret "${secret}", which is not set`);
      const hash = createHash('sha256').update(value).digest('hex').slice(0, 10);
      const name = `${this.options.prefix}-${fn.name}-${secret}-${hash}`.slice(0, 64);
      const found = (await this.docker.listSecrets({ filters: JSON.stringify({ name: [name] }) })).find((s) => s.Spec?.Name === name);
      const id =
        found?.ID ??
        ((await this.docker.createSecret({ Name: name, Labels: this.labels(fn), Data: Buffer.from(value).toString('base64') })) as { id: string }).id;
      refs.push({ SecretID: id, SecretName: name, File: { Name: secret, UID: '1000', GID: '1000', Mode: 0o400 } });
    }
    return refs;
  }

  /** Locked down as far as Swarm allows: read-only root, small tmpfs, no capabilities, limits, non-root. */
  private serviceSpec(fn: FunctionSpec, mode: 'warm' | 'job', settings: Record<string, string> = {}, suffix = '') {
    const image = this.images.get(fn.name);
    if (!image) throw new Error(`function ${fn.name} was not deployed`);
    const env = functionEnv(
      fn,
      this.options,
      mode === 'warm'
        ? {
            FN_MODE: 'warm',
            FN_INSTANCE: `${fn.name}-{{.Task.Slot}}-{{.Node.Hostname}}`,
            PORT: String(PORT),
            FN_HOST: '0.0.0.0',
            FN_MAX_INFLIGHT: String(fn.maxConcurrency),
            FN_DRAIN_SECONDS: String(fn.timeoutSeconds),
            ...settings,
          }
        : { FN_MODE: 'oneshot', FN_INSTANCE: `${fn.name}-job-{{.Node.Hostname}}`, ...settings },
      { includeSecrets: false },
    );
    const locked = taskLockdown(fn);
    return {
      Name: this.serviceName(fn, suffix),
      Labels: { ...this.labels(fn), [LABELS.swarmMode]: mode },
      TaskTemplate: {
        ContainerSpec: {
          Image: image,
          Labels: this.labels(fn),
          Env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
          ...locked.containerSpec,
          Secrets: this.secretRefs.get(fn.name) ?? [],
          StopGracePeriod: (fn.timeoutSeconds + 5) * SECOND_NS,
        },
        Resources: locked.resources,
        RestartPolicy: mode === 'warm' ? { Condition: 'on-failure', Delay: SECOND_NS / 10, MaxAttempts: 0 } : { Condition: 'none' },
        Networks: [{ Target: this.options.network }],
        LogDriver: locked.logDriver,
      },
      Mode: mode === 'warm' ? { Replicated: { Replicas: 0 } } : { ReplicatedJob: { MaxConcurrent: 1, TotalCompletions: 1 } },
      EndpointSpec: { Mode: 'dnsrr' },
    };
  }

  private state(fn: FunctionSpec): ServiceState {
    const state = this.services.get(fn.name);
    if (!state) throw new InvocationError(502, `function ${fn.name} was not deployed`);
    return state;
  }

  /** Sets the service's replicas to what the pool wants now; updates are queued, the last one wins. */
  private sync(state: ServiceState): Promise<void> {
    state.updates = state.updates.then(async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          const service = this.docker.getService(state.name);
          const info = (await service.inspect()) as {
            Version: { Index: number };
            Spec: Record<string, unknown> & { Mode: { Replicated?: { Replicas: number } } };
          };
          if (info.Spec.Mode.Replicated?.Replicas === state.desired) return;
          await service.update({ version: info.Version.Index, ...info.Spec, Mode: { Replicated: { Replicas: state.desired } } });
          return;
        } catch (error) {
          // "update out of sequence": someone else updated it in between; read again.
          if (attempt >= 5 || this.closed) {
            this.options.log?.(`could not scale ${state.name} to ${state.desired}: ${(error as Error).message}`);
            return;
          }
          await sleep(50);
        }
      }
    });
    return state.updates;
  }

  private async listTasks(service: string): Promise<SwarmTask[]> {
    return (await this.docker.listTasks({ filters: JSON.stringify({ service: [service] }) })) as SwarmTask[];
  }

  private address(task: SwarmTask): string | undefined {
    const attachment = task.NetworksAttachments?.find((a) => a.Network.Spec.Name === this.options.network);
    return attachment?.Addresses?.[0]?.split('/')[0];
  }

  /** Polls the service's tasks while it has instances, and settles the instances whose task went. */
  private watch(state: ServiceState): void {
    if (state.watching) return;
    state.watching = true;
    void (async () => {
      while (!this.closed && (state.instances.size > 0 || state.starting > 0)) {
        try {
          state.tasks = await this.listTasks(state.name);
          this.settle(state);
        } catch {
          // the engine did not answer this time
        }
        for (const wake of state.polled.splice(0)) wake();
        await sleep(state.starting > 0 ? 40 : 250);
      }
      state.watching = false;
      for (const wake of state.polled.splice(0)) wake();
    })();
  }

  private nextPoll(state: ServiceState): Promise<void> {
    return new Promise((resolve) => {
      state.polled.push(resolve);
      this.watch(state);
    });
  }

  private settle(state: ServiceState): void {
    const running = new Map(state.tasks.filter(alive).map((t) => [t.ID, t]));
    for (const instance of [...state.instances]) {
      if (running.has(instance.taskId)) continue;
      if (!instance.stopping) {
        // Swarm removed another task than the one being stopped: this instance takes over the
        // task of one that is stopping, which then counts as stopped.
        const swap = instance.ready && [...state.instances].find((other) => other.stopping && running.has(other.taskId));
        if (swap) {
          instance.taskId = swap.taskId;
          instance.url = swap.url;
          this.finish(state, swap);
          continue;
        }
        // It crashed (or was killed): the pool forgets it, so the service wants one fewer.
        state.desired = Math.max(0, state.desired - 1);
        void this.sync(state);
      }
      this.finish(state, instance);
    }
  }

  private finish(state: ServiceState, instance: SwarmInstance): void {
    state.instances.delete(instance);
    instance.done();
  }

  async startInstance(fn: FunctionSpec): Promise<Instance> {
    const state = this.state(fn);
    state.desired++;
    state.starting++;
    void this.sync(state);
    let instance: SwarmInstance | undefined;
    try {
      const deadline = Date.now() + fn.timeoutSeconds * 1_000 + 30_000;
      let task: SwarmTask | undefined;
      while (!task) {
        if (this.closed) throw new InvocationError(503, 'gateway is shutting down');
        if (Date.now() > deadline) throw new InvocationError(504, `no task of ${state.name} was scheduled in time`);
        await this.nextPoll(state);
        const taken = new Set([...state.instances].map((i) => i.taskId));
        task = state.tasks.find((t) => alive(t) && !taken.has(t.ID) && !state.claiming.has(t.ID) && this.address(t));
      }
      state.claiming.add(task.ID);
      let done!: () => void;
      const exited = new Promise<void>((resolve) => (done = resolve));
      instance = {
        id: `${fn.name}-${task.Slot ?? 0}-${task.ID.slice(0, 8)}`,
        url: `http://${this.address(task)}:${PORT}`,
        taskId: task.ID,
        exited,
        ready: false,
        stopping: false,
        done,
      };
      state.instances.add(instance);
      state.claiming.delete(task.ID);
      // Until its container runs, nothing answers at the task's address (a connection attempt
      // hangs rather than being refused): probe its health only from then on.
      const taskId = task.ID;
      while (state.tasks.find((t) => t.ID === taskId)?.Status.State !== 'running') {
        if (!state.instances.has(instance)) throw new InvocationError(502, `task ${taskId} of ${state.name} ended before it ran`);
        if (Date.now() > deadline) throw new InvocationError(504, `task ${taskId} of ${state.name} did not start in time`);
        await this.nextPoll(state);
      }
      await waitForHealth(instance.url, exited, Math.max(1_000, deadline - Date.now()), 20);
      instance.ready = true;
      return instance;
    } catch (error) {
      // A task that ended was already taken off the replicas by settle().
      const settled = instance !== undefined && !state.instances.has(instance);
      if (instance && state.instances.has(instance)) {
        instance.stopping = true;
        this.finish(state, instance);
      }
      if (!settled) {
        state.desired = Math.max(0, state.desired - 1);
        void this.sync(state);
      }
      throw error;
    } finally {
      state.starting--;
    }
  }

  async stopInstance(instance: Instance, how: 'drain' | 'kill'): Promise<void> {
    const swarmInstance = instance as SwarmInstance;
    const state = [...this.services.values()].find((s) => s.instances.has(swarmInstance));
    if (!state || swarmInstance.stopping) return instance.exited;
    swarmInstance.stopping = true;
    // Swarm stops (SIGTERM, so calls in flight drain) whichever task it picks; settle() makes
    // the pool's view match. A stuck call's task on this node is killed outright.
    if (how === 'kill') await this.killLocal(state, swarmInstance.taskId);
    state.desired = Math.max(0, state.desired - 1);
    await this.sync(state);
    this.watch(state);
    const grace = (state.fn.timeoutSeconds + 15) * 1_000;
    await Promise.race([instance.exited, sleep(grace)]);
    // Still running after all (Swarm stopped a task that was not yet claimed): it stays a spare
    // replica that the next start claims.
    if (state.instances.has(swarmInstance)) this.finish(state, swarmInstance);
  }

  private async killLocal(state: ServiceState, taskId: string): Promise<void> {
    const task = state.tasks.find((t) => t.ID === taskId);
    const container = task?.Status.ContainerStatus?.ContainerID;
    if (container && task?.NodeID === this.nodeId)
      await this.docker
        .getContainer(container)
        .kill()
        .catch(() => {});
  }

  // --- one-shot calls: a replicated-job service per call ---

  async runOnce(fn: FunctionSpec, invocation: Invocation, signal: AbortSignal): Promise<FunctionResponse> {
    const job = await this.desk.open(invocation);
    const { answered, token } = job;
    let serviceId: string | undefined;
    try {
      const spec = this.serviceSpec(fn, 'job', { FN_INVOCATION_URL: job.url }, `-${token.slice(0, 12)}`);
      serviceId = ((await this.docker.createService(spec as unknown as Docker.CreateServiceOptions)) as { id?: string; ID?: string }).id;
      serviceId ??= spec.Name;
      this.jobServices.add(serviceId);
      const aborted = new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
      return await Promise.race([answered, aborted, this.jobFailure(fn, serviceId, answered, signal)]);
    } finally {
      job.close();
      if (serviceId) {
        this.jobServices.delete(serviceId);
        const tasks = await this.listTasks(serviceId).catch(() => []);
        await this.docker
          .getService(serviceId)
          .remove()
          .catch(() => {});
        // Swarm keeps a finished job task's container even once its service is gone.
        await Promise.all(
          tasks
            .filter((t) => t.NodeID === this.nodeId && t.Status.ContainerStatus?.ContainerID)
            .map((t) =>
              this.docker
                .getContainer(t.Status.ContainerStatus!.ContainerID!)
                .remove({ force: true })
                .catch(() => {}),
            ),
        );
      }
    }
  }

  /** Rejects when the job's task ends without having answered. */
  private async jobFailure(fn: FunctionSpec, serviceId: string, answered: Promise<unknown>, signal: AbortSignal): Promise<never> {
    let done = false;
    void answered.then(() => (done = true));
    for (let delay = 50; !done && !signal.aborted && !this.closed; delay = Math.min(delay * 2, 250)) {
      await sleep(delay);
      if (done) break;
      const tasks = await this.listTasks(serviceId).catch(() => []);
      const ended = tasks.find((t) => !ALIVE.has(t.Status.State));
      if (ended) {
        await Promise.race([answered, sleep(500)]);
        if (done) break;
        const code = ended.Status.ContainerStatus?.ExitCode;
        throw new InvocationError(
          502,
          `function ${fn.name} ${ended.Status.State}${code !== undefined ? ` with ${code}` : ''} before answering${ended.Status.Err ? `: ${ended.Status.Err}` : ''}`,
        );
      }
    }
    return new Promise<never>(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    const services = [...this.services.values()].map((s) => s.name);
    this.services.clear();
    for (const id of [...services, ...this.jobServices])
      await this.docker
        .getService(id)
        .remove()
        .catch(() => {});
    await this.desk.close();
    // Secrets go once no service uses them any more.
    const owned = { filters: JSON.stringify({ label: [`${SWARM_OWNER_LABEL}=${this.options.prefix}`] }) };
    for (let attempt = 0; attempt < 20; attempt++) {
      const left = await this.docker.listSecrets(owned).catch(() => []);
      if (left.length === 0) break;
      await Promise.all(
        left.map((s) =>
          this.docker
            .getSecret(s.ID)
            .remove()
            .catch(() => {}),
        ),
      );
      await sleep(250);
    }
  }
}
