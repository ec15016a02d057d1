import Docker from 'dockerode';
import type { FunctionResponse, Invocation } from '@platform/function-contract';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import { InvocationError } from '../../errors.js';
import { assumeAlive, newControllerId, type OwnerAlive } from '../controller-id.js';
import { declaredImage } from '../lockdown.js';
import type { Instance, Runtime, RuntimeOptions } from '../runtime.js';
import { deployService, type NetworkNames } from './deploy.js';
import { JobDesk } from './job-desk.js';
import { Jobs } from './jobs.js';
import { removeAll, removeLeftovers } from './leftovers.js';
import { ensureSecrets } from './secrets.js';
import { type Deployed, jobServiceSpec, type SpecContext, serviceName, warmServiceSpec } from './spec.js';
import { type SwarmInstance, WarmService } from './warm.js';

export interface SwarmRuntimeOptions extends RuntimeOptions {
  docker?: Docker;
  /** The overlay network the function tasks join: the one network they are on. */
  network: string;
  /** Prefix of the function services' names and value of their owner label, e.g. `shop-fn`. */
  prefix: string;
  /** This controller's id (see newControllerId): the job services of its one-shot calls carry it. */
  controller?: string;
  /** Whether another controller still runs; its job services are left alone unless this says it is gone. Default: all alive. */
  isOwnerAlive?: OwnerAlive;
  /** Where one-shot job tasks fetch their invocation and post their response (this process, seen from the network). */
  callback: { host: string; port: number; listen?: string };
  log?: (message: string) => void;
}

/**
 * Functions as Swarm services. A warm function is one replicated service shared by every process
 * of the deployment, created at zero replicas (or updated in place, keeping its replicas) and
 * never removed by a process starting or stopping: the first call scales it up and waits for a
 * task to answer its health check, more replicas follow under load up to the manifest's
 * maxInstances, and it goes back to zero when idle. Calls go straight to the tasks' addresses on
 * the overlay network. A one-shot function runs as a `replicated-job` service per call, whose
 * task fetches the invocation from this process and posts the response back. Secrets are Swarm
 * secrets, never environment values in a service's spec.
 */
export class SwarmRuntime implements Runtime {
  readonly kind = 'swarm';
  /** This process's id: the job services it starts carry it. */
  readonly controller: string;
  private readonly docker: Docker;
  private readonly context: SpecContext;
  private readonly deployed = new Map<string, Deployed>();
  private readonly services = new Map<string, WarmService>();
  private readonly desk: JobDesk;
  private readonly jobs: Jobs;
  private network?: Promise<NetworkNames>;
  private nodeId?: string;
  private closed = false;

  constructor(private readonly options: SwarmRuntimeOptions) {
    this.docker = options.docker ?? new Docker();
    this.controller = options.controller ?? newControllerId();
    this.context = { prefix: options.prefix, network: options.network, options };
    this.desk = new JobDesk(options.callback);
    this.jobs = new Jobs({ docker: this.docker, desk: this.desk, nodeId: () => this.nodeId, closed: () => this.closed });
  }

  /** Checks that this engine is a Swarm manager; throws with what to do otherwise. */
  async check(): Promise<void> {
    const info = (await this.docker.info()) as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean; NodeID?: string } };
    if (info.Swarm?.LocalNodeState !== 'active' || !info.Swarm.ControlAvailable) {
      throw new Error("RUNTIME=swarm needs a Swarm manager's Docker Engine (docker swarm init, and the gateway placed on a manager)");
    }
    this.nodeId = info.Swarm.NodeID;
  }

  /**
   * Removes the one-shot job services whose controller is gone or which ended long ago (and their
   * containers), and older secrets no service uses. Never a warm function's service: those are
   * shared by every process of the deployment (see removeAll).
   */
  removeLeftovers(): Promise<number> {
    return removeLeftovers(this.docker, {
      prefix: this.options.prefix,
      controller: this.controller,
      isOwnerAlive: this.options.isOwnerAlive ?? assumeAlive,
      inFlight: this.jobs.running,
    });
  }

  /** Removes every service, task container and secret of this prefix, whoever started them: takes the whole deployment's functions down. */
  removeAll(): Promise<number> {
    return removeAll(this.docker, this.options.prefix);
  }

  /** Creates the function's service, or updates it in place when its spec changed; never removes it, and keeps its replicas. */
  async deploy(fn: FunctionSpec): Promise<void> {
    const reference = declaredImage(fn);
    let image: string;
    try {
      image = ((await this.docker.getImage(reference).inspect()) as { Id: string }).Id;
    } catch {
      throw new Error(`function ${fn.name}: image ${reference} is not on the Docker Engine; build it with \`pnpm images\``);
    }
    // By ID: every node running functions needs the same image (docker save | docker load keeps the ID).
    const deployed = { image, secrets: await ensureSecrets(this.docker, this.options.prefix, fn, this.options.secret) };
    this.deployed.set(fn.name, deployed);
    if (fn.mode === 'oneshot') return;
    const outcome = await deployService(this.docker, warmServiceSpec(this.context, fn, deployed), await this.networkNames());
    if (outcome === 'updated') this.options.log?.(`updated service ${serviceName(this.options.prefix, fn.name)}: its spec had changed`);
    const existing = this.services.get(fn.name);
    if (existing) existing.fn = fn;
    else {
      const context = { docker: this.docker, network: this.options.network, nodeId: () => this.nodeId, closed: () => this.closed, log: this.options.log };
      this.services.set(fn.name, new WarmService(context, fn, serviceName(this.options.prefix, fn.name)));
    }
  }

  private networkNames(): Promise<NetworkNames> {
    const name = this.options.network;
    this.network ??= this.docker
      .getNetwork(name)
      .inspect()
      .then((info: { Id: string }) => ({ name, id: info.Id }));
    return this.network.catch((error) => {
      this.network = undefined;
      throw error;
    });
  }

  private service(fn: FunctionSpec): WarmService {
    const service = this.services.get(fn.name);
    if (!service) throw new InvocationError(502, `function ${fn.name} was not deployed`);
    return service;
  }

  async startInstance(fn: FunctionSpec): Promise<Instance> {
    return this.service(fn).start();
  }

  async adopt(fn: FunctionSpec): Promise<Instance[]> {
    return fn.mode === 'oneshot' ? [] : this.service(fn).adopt();
  }

  async stopInstance(instance: Instance, how: 'drain' | 'kill'): Promise<void> {
    const service = [...this.services.values()].find((s) => s.instances.has(instance as SwarmInstance));
    if (!service) return instance.exited;
    await service.stop(instance as SwarmInstance, how);
  }

  async runOnce(fn: FunctionSpec, invocation: Invocation, signal: AbortSignal): Promise<FunctionResponse> {
    const deployed = this.deployed.get(fn.name);
    if (!deployed) throw new InvocationError(502, `function ${fn.name} was not deployed`);
    return this.jobs.run(fn, invocation, signal, async (job) => {
      // Its secrets again: one no service used may have been removed as a leftover since deploy.
      const secrets = fn.secrets.length > 0 ? await ensureSecrets(this.docker, this.options.prefix, fn, this.options.secret) : [];
      return jobServiceSpec(this.context, fn, { ...deployed, secrets }, { ...job, controller: this.controller });
    });
  }

  /** A removed function's service goes (its instances have stopped); a function deployed again gets a new one. */
  async remove(fn: FunctionSpec): Promise<void> {
    this.services.delete(fn.name);
    this.deployed.delete(fn.name);
    if (fn.mode === 'oneshot') return;
    await this.docker
      .getService(serviceName(this.options.prefix, fn.name))
      .remove()
      .catch((error: { statusCode?: number }) => {
        if (error.statusCode !== 404) throw error;
      });
  }

  /**
   * Stops this process's part: its one-shot calls in flight (their job services go) and its
   * callback port. The warm services and their replicas stay, for the other processes of the
   * deployment and the next one to start.
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.jobs.close();
    await this.desk.close();
  }
}
