import { EventEmitter } from 'node:events';
import { existsSync, realpathSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { FunctionResponse, Invocation } from '@platform/function-contract';
import type { FunctionManifest, FunctionSpec } from '@platform/function-contract/manifest';
import type { Runtime } from '../runtimes/runtime.js';
import type { Capacity, CapacityEvents, InstanceInfo } from '../capacity.js';
import type { LogLine } from '../runtimes/logs.js';
import { InvocationError } from '../errors.js';
import { imageAllowed, parseDeployRequest, type DeployManifest } from '../deploy-request.js';
import { declaredSecrets, GATEWAY_ONLY_SECRETS } from '../secrets.js';
import type { FunctionStore } from '../store/functions.js';
import { FunctionInstances } from './instances.js';

export interface ControllerOptions {
  /** Where functions deployed through the API are kept (survive restarts), closed with the controller; without it, nowhere. */
  store?: FunctionStore;
  /** Images a deploy may name (patterns, `*` for any characters); none: every deploy naming an image is refused. */
  images?: string[];
  /** Secrets a function may ask for (FUNCTION_SECRETS); default: those the app's functions declare. The gateway's own never. */
  secrets?: string[];
  /** Where the process runtime finds a deployed function's code: `<functionsDir>/<name>/<main>`. */
  functionsDir?: string;
  /** The longest timeoutSeconds a deployed function may have (the queue's visibility timeout is longer). */
  maxTimeoutSeconds?: number;
  log?: (message: string) => void;
}

/** Where deployed functions' code is unless told (ControllerOptions.functionsDir). */
const FUNCTIONS_DIR = 'functions';

/** The edge in the controller's own process, when the edge reports with no name. */
export const LOCAL_EDGE = 'local';

/**
 * The controller: the only holder of the runtime (and so of the Docker socket), it starts and
 * stops every instance. Edges in its process call it directly; others through `controllerApi`.
 */
export class Controller extends EventEmitter<CapacityEvents> implements Capacity {
  readonly kind: string;
  private readonly running = new Map<string, FunctionInstances>();
  /** Instances of functions updated or removed, stopping once their calls are done. */
  private readonly draining = new Set<FunctionInstances>();
  private edgeCount = 1;
  /** Deploys one at a time: each sees the functions as the last one left them. */
  private deploying: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly runtime: Runtime,
    private readonly options: ControllerOptions,
    private readonly allowedSecrets: readonly string[],
    /** Where code may really be (links resolved): the functions folder, and the app's function folders it may link to. */
    private readonly codeFolders: readonly string[],
  ) {
    super();
    this.setMaxListeners(0); // every edge pool of every function listens
    this.kind = runtime.kind;
  }

  /**
   * Deploys every function, the app's (`specs`) and those deployed through the API before (the
   * store's, which win over the app's of the same name), before anything is served.
   */
  static async start(runtime: Runtime, specs: FunctionSpec[], options: ControllerOptions = {}): Promise<Controller> {
    const functionsDir = options.functionsDir ?? FUNCTIONS_DIR;
    const codeFolders = [functionsDir, ...specs.map((spec) => spec.dir)].filter((dir) => existsSync(dir)).map((dir) => realpathSync(dir));
    const controller = new Controller(runtime, options, options.secrets ?? declaredSecrets(specs), codeFolders);
    // The app's own functions are the operator's: one asking for a secret not allowed is a setting to fix.
    for (const spec of specs) {
      try {
        controller.checkSecrets(spec);
      } catch (error) {
        throw new Error(`function ${spec.name}: ${(error as Error).message}`);
      }
    }
    // Each function deployed once, as it will run (a deploy may take away what other versions left).
    const all = new Map<string, FunctionSpec>();
    for (const stored of (await options.store?.list()) ?? []) {
      // A deployed function that cannot run now (its image or its folder gone, or a manifest kept
      // before a rule refused it) is left out, not fatal: the app's own functions still run, and
      // deploying it again brings it back.
      const name = (stored as { name?: unknown }).name;
      try {
        const spec = controller.specOf({ private: false, ...parseDeployRequest(stored) });
        controller.check(spec);
        await runtime.deploy(spec);
        all.set(spec.name, spec);
      } catch (error) {
        options.log?.(`${String(name)}: deployed earlier, left out now: ${(error as Error).message}`);
      }
    }
    for (const spec of specs) {
      if (all.has(spec.name)) continue;
      await runtime.deploy(spec);
      all.set(spec.name, spec);
    }
    for (const spec of all.values()) {
      const instances = controller.track(spec);
      // A controller taking over keeps the instances the last one left running, and edges keep calling them.
      const taken = await instances.adopt().catch((error: Error) => {
        options.log?.(`${spec.name}: could not take over its running instances: ${error.message}`);
        return [];
      });
      if (taken.length > 0) options.log?.(`${spec.name}: took over ${taken.length} running instances: ${taken.join(', ')}`);
    }
    return controller;
  }

  functions(): FunctionSpec[] {
    return [...this.running.values()].map((f) => f.spec);
  }

  deploy(manifest: DeployManifest, how: 'create' | 'update'): Promise<FunctionSpec> {
    const next = this.deploying.then(() => this.deployNow(manifest, how));
    this.deploying = next.catch(() => {});
    return next;
  }

  remove(fn: string): Promise<void> {
    const next = this.deploying.then(() => this.removeNow(fn));
    this.deploying = next.catch(() => {});
    return next;
  }

  /** How many edges share the instances: each takes its share of an instance's concurrency. */
  setEdges(count: number): void {
    this.edgeCount = Math.max(1, count);
  }

  edges(): number {
    return this.edgeCount;
  }

  instances(fn: string): InstanceInfo[] {
    return this.of(fn).list();
  }

  grow(fn: string, signal: AbortSignal): Promise<InstanceInfo | null> {
    return this.of(fn).grow(signal);
  }

  used(fn: string, instance: string, inFlight: number, edge = LOCAL_EDGE): void {
    // Calls still running on an updated or removed function's instances count for their draining.
    for (const old of this.draining) if (old.spec.name === fn) old.used(edge, instance, inFlight);
    this.running.get(fn)?.used(edge, instance, inFlight);
  }

  /** An edge stopped reporting (it died): forget the calls it said it had in flight. */
  forgetEdge(edge: string): void {
    for (const instances of [...this.running.values(), ...this.draining]) instances.forgetEdge(edge);
  }

  retire(fn: string, instance: string, reason: 'unreachable' | 'timeout'): void {
    for (const old of this.draining) if (old.spec.name === fn) old.retire(instance, reason);
    this.running.get(fn)?.retire(instance, reason);
  }

  runOnce(fn: string, invocation: Invocation, signal: AbortSignal): Promise<FunctionResponse> {
    return this.of(fn).runOnce(invocation, signal);
  }

  scaleTo(fn: string, replicas: number): Promise<{ replicas: number }> {
    return this.of(fn).scaleTo(replicas);
  }

  counts(fn: string): { replicas: number; availableReplicas: number; coldStarts: number } {
    return this.of(fn).counts();
  }

  logs(fn: string, tail: number): LogLine[] {
    if (!this.runtime.logs) throw new InvocationError(501, `the ${this.runtime.kind} runtime keeps no logs of its functions`);
    return this.runtime.logs(fn, tail);
  }

  async close(): Promise<void> {
    await this.deploying;
    await Promise.all([...this.running.values(), ...this.draining].map((f) => f.close()));
    await this.options.store?.close();
  }

  private async deployNow(request: DeployManifest, how: 'create' | 'update'): Promise<FunctionSpec> {
    const old = this.running.get(request.name);
    if (how === 'create' && old) throw new InvocationError(409, `function "${request.name}" exists: change it with PUT /system/functions`);
    if (how === 'update' && !old) throw new InvocationError(404, `function "${request.name}" not found: deploy it with POST /system/functions`);
    // An update that does not say makes no private function public.
    const manifest: FunctionManifest = { ...request, private: request.private ?? old?.spec.private ?? false };
    const spec = this.specOf(manifest);
    this.check(spec);
    try {
      await this.runtime.deploy(spec);
    } catch (error) {
      throw new InvocationError(400, `function "${spec.name}" cannot run on the ${this.runtime.kind} runtime: ${(error as Error).message}`);
    }
    await this.options.store?.put(manifest);
    if (old) this.drain(old, 'updated', () => this.runtime.remove?.(old.spec));
    this.track(spec);
    this.emit('deployed', { function: spec.name, action: old ? 'updated' : 'deployed', image: spec.image });
    return spec;
  }

  private async removeNow(fn: string): Promise<void> {
    const old = this.of(fn);
    await this.options.store?.remove(fn);
    this.running.delete(fn);
    this.drain(old, 'removed', () => this.runtime.remove?.(old.spec));
    this.emit('removed', { function: fn });
  }

  /**
   * What a deploy may not do: name an image outside the allowed ones, outlast the queue's
   * redelivery, or (on the process runtime, which runs code on this host) run code that is not in
   * the functions folder.
   */
  private check(spec: FunctionSpec): void {
    const { images = [], maxTimeoutSeconds } = this.options;
    this.checkSecrets(spec);
    if (spec.image && !imageAllowed(spec.image, images)) {
      throw new InvocationError(
        403,
        `field "image": "${spec.image}" is not allowed here; allowed: ${images.length ? images.join(', ') : 'none (set the allowed images)'}`,
      );
    }
    if (maxTimeoutSeconds !== undefined && spec.timeoutSeconds > maxTimeoutSeconds) {
      throw new InvocationError(400, `field "timeoutSeconds" must be at most ${maxTimeoutSeconds} here (the queue redelivers a call taking longer)`);
    }
    if (this.runtime.kind !== 'process') return;
    const main = resolve(spec.dir, spec.main);
    const outside = () => new InvocationError(400, `field "main": ${spec.main} is outside the functions folder; the process runtime runs only code inside it`);
    if (!within(resolve(this.functionsDir()), main)) throw outside();
    if (!existsSync(spec.dir)) {
      throw new InvocationError(400, `field "name": no folder ${spec.dir}; the process runtime runs a function's code from its folder (fn new writes one)`);
    }
    if (!existsSync(main)) throw new InvocationError(400, `field "main": ${main} not found; the process runtime runs a function's code from its folder`);
    // Where the code really is: a link inside the folder may lead out of it.
    const real = realpathSync(main);
    if (!this.codeFolders.some((folder) => within(folder, real))) throw outside();
  }

  /** A function may ask only for the allowed secrets, and never for the gateway's own. */
  private checkSecrets(spec: FunctionManifest): void {
    const refused = spec.secrets.find((name) => GATEWAY_ONLY_SECRETS.includes(name) || !this.allowedSecrets.includes(name));
    if (refused === undefined) return;
    const allowed = this.allowedSecrets.filter((name) => !GATEWAY_ONLY_SECRETS.includes(name));
    throw new InvocationError(
      403,
      `field "secrets": "${refused}" is not allowed here; allowed: ${allowed.length ? allowed.join(', ') : 'none (set FUNCTION_SECRETS)'}`,
    );
  }

  private functionsDir(): string {
    return this.options.functionsDir ?? FUNCTIONS_DIR;
  }

  /** A deployed manifest with where its code is (for the process runtime): its folder in the functions folder. */
  private specOf(manifest: FunctionManifest): FunctionSpec {
    const dir = join(this.functionsDir(), manifest.name);
    return { ...manifest, dir, manifestPath: join(dir, 'function.json') };
  }

  /** Instances of a new function, their events passed on as one stream, as a remote controller sends them. */
  private track(spec: FunctionSpec): FunctionInstances {
    const instances = new FunctionInstances(spec, this.runtime);
    instances.on('instanceStarted', (e) => this.emit('instanceStarted', e));
    instances.on('instanceStopped', (e) => this.emit('instanceStopped', e));
    instances.on('scaled', (e) => this.emit('scaled', e));
    this.running.set(spec.name, instances);
    return instances;
  }

  /** No new calls for these instances; each stops once the calls it has are done. */
  private drain(instances: FunctionInstances, reason: string, then?: () => Promise<void> | undefined): void {
    this.draining.add(instances);
    void instances
      .retireAll(reason)
      .then(then)
      .catch((error: Error) => this.options.log?.(`${instances.spec.name}: ${reason}, but not cleaned up: ${error.message}`))
      .finally(() => this.draining.delete(instances));
  }

  private of(fn: string): FunctionInstances {
    const found = this.running.get(fn);
    if (!found) throw new InvocationError(404, `function "${fn}" not found`);
    return found;
  }
}

/** Whether path is inside folder (both absolute and resolved the same way). */
function within(folder: string, path: string): boolean {
  const inside = relative(folder, path);
  return !inside.startsWith('..') && !isAbsolute(inside);
}
