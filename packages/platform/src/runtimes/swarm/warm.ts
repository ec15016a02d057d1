import type Docker from 'dockerode';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import { InvocationError } from '../../errors.js';
import { waitForHealth } from '../net.js';
import type { Instance } from '../runtime.js';
import { Replicas } from './replicas.js';
import { PORT, taskInstanceId } from './spec.js';
import { isAlive, killTaskContainer, listTasks, type SwarmTask, sleep, taskAddress } from './tasks.js';

export interface SwarmInstance extends Instance {
  url: string;
  taskId: string;
  /** Answered its health check: only then may it take over another task (see settle). */
  ready: boolean;
  stopping: boolean;
  done: () => void;
}

export interface WarmContext {
  docker: Docker;
  network: string;
  /** This engine's Swarm node: only its containers can be killed from here. */
  nodeId(): string | undefined;
  closed(): boolean;
  log?: ((message: string) => void) | undefined;
}

/**
 * This runtime's instances of one warm function's service: which task serves which pool
 * instance, found by polling the service's tasks while there are any, and the replicas they need.
 */
export class WarmService {
  readonly instances = new Set<SwarmInstance>();
  /** The credential of this service's tasks (one per service version: they share one spec), set by deploy. */
  invokeToken = '';
  private readonly replicas: Replicas;
  /** Tasks being claimed by a starting instance. */
  private readonly claiming = new Set<string>();
  private starting = 0;
  private watching = false;
  private tasks: SwarmTask[] = [];
  /** Resolved on every poll of the tasks. */
  private polled: Array<() => void> = [];

  constructor(
    private readonly context: WarmContext,
    public fn: FunctionSpec,
    readonly name: string,
  ) {
    this.replicas = new Replicas(context.docker, name, context.closed, context.log);
  }

  /**
   * The service's running tasks that answer their health check, up to maxInstances, as instances
   * of this process (a controller taking over from one that died); the replicas wanted become
   * their number. Called once, before any start.
   */
  async adopt(): Promise<SwarmInstance[]> {
    this.tasks = await listTasks(this.context.docker, this.name);
    const found = this.tasks.filter((t) => isAlive(t) && t.Status.State === 'running' && taskAddress(t, this.context.network));
    const adopted = await Promise.all(
      found.slice(0, this.fn.maxInstances).map(async (task) => {
        const instance = this.instanceOf(task, true);
        return waitForHealth(instance.url, instance.exited, 2_000, 20).then(
          () => instance,
          () => undefined,
        );
      }),
    );
    const instances = adopted.filter((i): i is SwarmInstance => i !== undefined);
    for (const instance of instances) this.instances.add(instance);
    this.replicas.desired = instances.length;
    // Those that did not answer (or beyond maxInstances) go: the count is what this process uses.
    if (found.length !== instances.length) void this.replicas.write();
    if (instances.length > 0) this.watch();
    return instances;
  }

  /** The instance a task serves, named as the task names itself (FN_INSTANCE). */
  private instanceOf(task: SwarmTask, ready: boolean): SwarmInstance {
    let done!: () => void;
    const exited = new Promise<void>((resolve) => (done = resolve));
    return {
      id: taskInstanceId(this.fn.name, task.Slot ?? 0, task.ID),
      url: `http://${taskAddress(task, this.context.network)}:${PORT}`,
      invokeToken: this.invokeToken,
      taskId: task.ID,
      exited,
      ready,
      stopping: false,
      done,
    };
  }

  /** One more replica, and the first task nobody claimed yet, once it answers its health check. */
  async start(): Promise<Instance> {
    this.replicas.desired++;
    this.starting++;
    void this.replicas.write();
    let instance: SwarmInstance | undefined;
    try {
      const deadline = Date.now() + this.fn.timeoutSeconds * 1_000 + 30_000;
      let task: SwarmTask | undefined;
      while (!task) {
        if (this.context.closed()) throw new InvocationError(503, 'gateway is shutting down');
        if (Date.now() > deadline) throw new InvocationError(504, `no task of ${this.name} was scheduled in time`);
        await this.nextPoll();
        const taken = new Set([...this.instances].map((i) => i.taskId));
        task = this.tasks.find((t) => isAlive(t) && !taken.has(t.ID) && !this.claiming.has(t.ID) && taskAddress(t, this.context.network));
      }
      this.claiming.add(task.ID);
      instance = this.instanceOf(task, false);
      this.instances.add(instance);
      this.claiming.delete(task.ID);
      // Until its container runs, nothing answers at the task's address (a connection attempt
      // hangs rather than being refused): probe its health only from then on.
      const taskId = task.ID;
      while (this.tasks.find((t) => t.ID === taskId)?.Status.State !== 'running') {
        if (!this.instances.has(instance)) throw new InvocationError(502, `task ${taskId} of ${this.name} ended before it ran`);
        if (Date.now() > deadline) throw new InvocationError(504, `task ${taskId} of ${this.name} did not start in time`);
        await this.nextPoll();
      }
      await waitForHealth(instance.url, instance.exited, Math.max(1_000, deadline - Date.now()), 20);
      instance.ready = true;
      return instance;
    } catch (error) {
      // A task that ended was already taken off the replicas by settle().
      const settled = instance !== undefined && !this.instances.has(instance);
      if (instance && this.instances.has(instance)) {
        instance.stopping = true;
        this.finish(instance);
      }
      if (!settled) {
        this.replicas.desired = Math.max(0, this.replicas.desired - 1);
        void this.replicas.write();
      }
      throw error;
    } finally {
      this.starting--;
    }
  }

  /** One replica fewer. Swarm stops (SIGTERM, so calls in flight drain) whichever task it picks; settle() makes the pool's view match. */
  async stop(instance: SwarmInstance, how: 'drain' | 'kill'): Promise<void> {
    if (instance.stopping) return instance.exited;
    instance.stopping = true;
    // A stuck call's task on this node is killed outright.
    if (how === 'kill')
      await killTaskContainer(
        this.context.docker,
        this.tasks.find((t) => t.ID === instance.taskId),
        this.context.nodeId(),
      );
    this.replicas.desired = Math.max(0, this.replicas.desired - 1);
    await this.replicas.write();
    this.watch();
    const grace = (this.fn.timeoutSeconds + 15) * 1_000;
    await Promise.race([instance.exited, sleep(grace)]);
    // Still running after all (Swarm stopped a task that was not yet claimed): it stays a spare
    // replica that the next start claims.
    if (this.instances.has(instance)) this.finish(instance);
  }

  /** Polls the service's tasks while it has instances, and settles the instances whose task went. */
  private watch(): void {
    if (this.watching) return;
    this.watching = true;
    void (async () => {
      while (!this.context.closed() && (this.instances.size > 0 || this.starting > 0)) {
        try {
          this.tasks = await listTasks(this.context.docker, this.name);
          this.settle();
        } catch {
          // the engine did not answer this time
        }
        for (const wake of this.polled.splice(0)) wake();
        await sleep(this.starting > 0 ? 40 : 250);
      }
      this.watching = false;
      for (const wake of this.polled.splice(0)) wake();
    })();
  }

  private nextPoll(): Promise<void> {
    return new Promise((resolve) => {
      this.polled.push(resolve);
      this.watch();
    });
  }

  private settle(): void {
    const running = new Map(this.tasks.filter(isAlive).map((t) => [t.ID, t]));
    for (const instance of [...this.instances]) {
      if (running.has(instance.taskId)) continue;
      if (!instance.stopping) {
        // Swarm removed another task than the one being stopped: this instance takes over the
        // task of one that is stopping, which then counts as stopped.
        const swap = instance.ready && [...this.instances].find((other) => other.stopping && running.has(other.taskId));
        if (swap) {
          instance.taskId = swap.taskId;
          instance.url = swap.url;
          this.finish(swap);
          continue;
        }
        // It crashed (or was killed): the pool forgets it, so the service wants one fewer.
        this.replicas.desired = Math.max(0, this.replicas.desired - 1);
        void this.replicas.write();
      }
      this.finish(instance);
    }
  }

  private finish(instance: SwarmInstance): void {
    this.instances.delete(instance);
    instance.done();
  }
}
