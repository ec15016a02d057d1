import { EventEmitter } from 'node:events';
import type { FunctionResponse, Invocation } from '@platform/function-contract';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import type { Runtime } from '../runtimes/runtime.js';
import type { Capacity, CapacityEvents, InstanceInfo } from '../capacity.js';
import type { LogLine } from '../runtimes/logs.js';
import { InvocationError } from '../errors.js';
import { FunctionInstances } from './instances.js';

/** The edge in the controller's own process, when the edge reports with no name. */
export const LOCAL_EDGE = 'local';

/**
 * The controller: the only holder of the runtime (and so of the Docker socket), it starts and
 * stops every instance. Edges in its process call it directly; others through `controllerApi`.
 */
export class Controller extends EventEmitter<CapacityEvents> implements Capacity {
  readonly kind: string;
  private readonly functions = new Map<string, FunctionInstances>();
  private edgeCount = 1;

  private constructor(private readonly runtime: Runtime) {
    super();
    this.setMaxListeners(0); // every edge pool of every function listens
    this.kind = runtime.kind;
  }

  /** Deploys every function (image checks, services) before anything is served. */
  static async start(runtime: Runtime, specs: FunctionSpec[], log?: (message: string) => void): Promise<Controller> {
    const controller = new Controller(runtime);
    for (const spec of specs) {
      await runtime.deploy(spec);
      const instances = new FunctionInstances(spec, runtime);
      // One stream of instance events for all functions, as a remote controller sends them.
      instances.on('instanceStarted', (e) => controller.emit('instanceStarted', e));
      instances.on('instanceStopped', (e) => controller.emit('instanceStopped', e));
      instances.on('scaled', (e) => controller.emit('scaled', e));
      controller.functions.set(spec.name, instances);
      // A controller taking over keeps the instances the last one left running, and edges keep calling them.
      const taken = await instances.adopt().catch((error: Error) => {
        log?.(`${spec.name}: could not take over its running instances: ${error.message}`);
        return [];
      });
      if (taken.length > 0) log?.(`${spec.name}: took over ${taken.length} running instances: ${taken.join(', ')}`);
    }
    return controller;
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
    this.of(fn).used(edge, instance, inFlight);
  }

  /** An edge stopped reporting (it died): forget the calls it said it had in flight. */
  forgetEdge(edge: string): void {
    for (const instances of this.functions.values()) instances.forgetEdge(edge);
  }

  retire(fn: string, instance: string, reason: 'unreachable' | 'timeout'): void {
    this.of(fn).retire(instance, reason);
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
    await Promise.all([...this.functions.values()].map((f) => f.close()));
  }

  private of(fn: string): FunctionInstances {
    const found = this.functions.get(fn);
    if (!found) throw new InvocationError(404, `function "${fn}" not found`);
    return found;
  }
}
