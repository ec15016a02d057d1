import Docker from 'dockerode';
import { INVOKE_TOKEN_ENV, type FunctionResponse, type Invocation } from '@platform/function-contract';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import { InvocationError } from '../../errors.js';
import { LABELS } from '../../labels.js';
import { assumeAlive, newControllerId, type OwnerAlive } from '../controller-id.js';
import { declaredImage } from '../lockdown.js';
import type { Instance, Runtime, RuntimeOptions } from '../runtime.js';
import { deployService, type NetworkNames, removeService } from './deploy.js';
import { JobDesk } from './job-desk.js';
import { Jobs } from './jobs.js';
import { removeAll, removeLeftovers } from './leftovers.js';
import { ensureSecrets } from './secrets.js';
import { type Deployed, jobServiceSpec, SWARM_FUNCTION_LABEL, SWARM_OWNER_LABEL, type SpecContext, warmServiceSpec } from './spec.js';
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

/** What deploy made of one spec: its image by ID, its secrets, and for a warm function its version's service. */
interface Version {
  deployed: Deployed;
  service?: WarmService;
}

/**
 * Functions as Swarm services. A warm function is one replicated service per version of it
 * (see warmServiceSpec), created at zero replicas: the first call scales it up and waits for a
 * task to answer its health check, more replicas follow under load up to the manifest's
 * maxInstances, and it goes back to zero when idle. An update deploys a new version beside the
 * old, whose service goes once its instances have drained; services of versions this process
 * does not run (left by a controller before it) go when the function is deployed. Calls go
 * straight to the tasks' addresses on the overlay network. A one-shot function runs as a
 * `replicated-job` service per call, whose task fetches the invocation from this process and
 * posts the response back. Secrets are Swarm secrets, never environment values in a service's spec.
 */
export class SwarmRuntime implements Runtime {
  readonly kind = 'swarm';
  /** This process's id: the job services it starts carry it. */
  readonly controller: string;
  private readonly docker: Docker;
  private readonly context: SpecContext;
  private readonly versions = new WeakMap<FunctionSpec, Version>();
  /** The spec each function was last deployed with. */
  private readonly current = new Map<string, FunctionSpec>();
  /** The warm services of this process, by name: every function's current version, and older ones still draining. */
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
   * containers), and older secrets no service uses. Never a warm function's service: deploy
   * takes away the versions nobody runs (see removeAll).
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

  /**
   * Creates the service of this version of the function unless it exists (keeping its replicas),
   * then removes the function's services of other versions that no instance of this process runs.
   */
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
    if (fn.mode === 'oneshot') {
      this.versions.set(fn, { deployed });
      this.current.set(fn.name, fn);
      return;
    }
    const spec = warmServiceSpec(this.context, fn, deployed);
    const { invokeToken } = await deployService(this.docker, spec, await this.networkNames());
    if (!invokeToken) throw new Error(`service ${spec.Name} has no ${INVOKE_TOKEN_ENV} for its instances`);
    let service = this.services.get(spec.Name);
    if (service) service.fn = fn;
    else {
      const context = { docker: this.docker, network: this.options.network, nodeId: () => this.nodeId, closed: () => this.closed, log: this.options.log };
      service = new WarmService(context, fn, spec.Name);
      this.services.set(spec.Name, service);
    }
    // The service's own, which its running tasks (adopted from a controller before this one) have.
    service.invokeToken = invokeToken;
    this.versions.set(fn, { deployed, service });
    this.current.set(fn.name, fn);
    await this.removeOtherVersions(fn.name);
  }

  /** A function's warm services this process does not know (older versions, left by a controller before it) go: nobody would scale them down. */
  private async removeOtherVersions(fn: string): Promise<void> {
    const labels = [`${SWARM_OWNER_LABEL}=${this.options.prefix}`, `${SWARM_FUNCTION_LABEL}=${fn}`, `${LABELS.swarmMode}=warm`];
    const found = (await this.docker.listServices({ filters: JSON.stringify({ label: labels }) })) as Array<{ ID: string; Spec: { Name: string } }>;
    for (const other of found.filter((s) => !this.services.has(s.Spec.Name))) {
      await removeService(this.docker, other.ID);
      this.options.log?.(`removed service ${other.Spec.Name}: a version of ${fn} no instance runs any more`);
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

  /** What deploy made of this spec (or, for a copy of it, of the function's current one). */
  private version(fn: FunctionSpec): Version {
    const found = this.versions.get(fn) ?? this.versions.get(this.current.get(fn.name) ?? fn);
    if (!found) throw new InvocationError(502, `function ${fn.name} was not deployed`);
    return found;
  }

  private service(fn: FunctionSpec): WarmService {
    const { service } = this.version(fn);
    if (!service) throw new InvocationError(502, `function ${fn.name} is not a warm function`);
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
    const { deployed } = this.version(fn);
    return this.jobs.run(fn, invocation, signal, async (job) => {
      // Its secrets again: one no service used may have been removed as a leftover since deploy.
      const secrets = fn.secrets.length > 0 ? await ensureSecrets(this.docker, this.options.prefix, fn, this.options.secret) : [];
      return jobServiceSpec(this.context, fn, { ...deployed, secrets }, { ...job, controller: this.controller });
    });
  }

  /**
   * A spec whose instances have stopped (updated or removed): its version's service goes, unless
   * the function's current deploy runs the same version.
   */
  async remove(fn: FunctionSpec): Promise<void> {
    const version = this.versions.get(fn);
    if (!version) return;
    this.versions.delete(fn);
    const current = this.current.get(fn.name);
    if (current === fn) this.current.delete(fn.name);
    else if (current && this.versions.get(current)?.service === version.service) return;
    if (!version.service) return;
    this.services.delete(version.service.name);
    await removeService(this.docker, version.service.name);
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
