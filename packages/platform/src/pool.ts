import { EventEmitter } from 'node:events';
import type { FunctionResponse, Invocation } from '@platform/function-contract';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import type { Capacity, FunctionEvents, InstanceInfo } from './capacity.js';
import { InstanceGoneError, InvocationError } from './errors.js';
import { invokeInstance } from './instance-client.js';

/** Instances a call is sent to at most when it reaches none of them (each gone before it got the call). */
const MAX_TRIES = 3;

export interface FunctionStatusCounts {
  replicas: number;
  availableReplicas: number;
  inFlight: number;
  queued: number;
  invocationCount: number;
  coldStarts: number;
}

/** Events for observers (dashboard, metrics): instances as the controller reports them, and calls finished here. */
export interface PoolEvents extends FunctionEvents {
  /** `response` is what the caller got: the function's answer, or the gateway's error for it. */
  callFinished: [{ function: string; callId: string; status: number; durationMs: number; response: FunctionResponse }];
}

/**
 * One function as an edge serves it, the same for every runtime: at most its share of
 * maxConcurrency calls in flight and maxQueued waiting (beyond that 429), each call bounded by the
 * manifest's timeout (504), sent to the least busy instance within this edge's share of it. Which
 * instances exist is the controller's decision (`Capacity`); this pool only asks for more.
 */
export class FunctionPool extends EventEmitter<PoolEvents> {
  private readonly waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  /** This edge's calls in flight on each instance. */
  private readonly onInstance = new Map<string, number>();
  private inFlight = 0;
  private invocationCount = 0;
  /** Why it takes no more calls, once closed. */
  private closed: InvocationError | undefined;
  private readonly forward: { [K in keyof FunctionEvents]: (...args: FunctionEvents[K]) => void };

  constructor(
    private current: FunctionSpec,
    private readonly capacity: Capacity,
  ) {
    super();
    // The controller announces every function's instances; this pool passes on its own function's.
    const mine = <K extends keyof FunctionEvents>(event: K) =>
      ((e: FunctionEvents[K][0]) => {
        if (e.function === this.current.name) (this.emit as (k: K, a: FunctionEvents[K][0]) => boolean)(event, e);
      }) as never;
    this.forward = { instanceStarted: mine('instanceStarted'), instanceStopped: mine('instanceStopped'), scaled: mine('scaled') };
    for (const [event, listener] of Object.entries(this.forward)) capacity.on(event as keyof FunctionEvents, listener as never);
  }

  /** The manifest it serves by: changed by an update, which new calls follow. */
  get spec(): FunctionSpec {
    return this.current;
  }

  update(spec: FunctionSpec): void {
    this.current = spec;
  }

  async invoke(invocation: Invocation): Promise<FunctionResponse> {
    const started = Date.now();
    // A timer cleared when the call ends: AbortSignal.timeout would leave each call's timer to fire
    // (and build its error) long after the call was answered.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), this.spec.timeoutSeconds * 1_000);
    const { signal } = deadline;
    let status = 500;
    let response: FunctionResponse | undefined;
    try {
      await this.acquire(signal);
      try {
        response = await this.run(invocation, signal);
        status = response.status;
        return response;
      } finally {
        this.release();
      }
    } catch (error) {
      const failure = signal.aborted ? new InvocationError(504, `function ${this.spec.name} did not answer within ${this.spec.timeoutSeconds} s`) : error;
      status = failure instanceof InvocationError ? failure.status : 502;
      response = {
        status,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ error: (failure as Error).message }),
      };
      throw failure;
    } finally {
      clearTimeout(timer);
      this.invocationCount++;
      this.emit('callFinished', {
        function: this.spec.name,
        callId: invocation.callId,
        status,
        durationMs: Date.now() - started,
        response: response ?? { status },
      });
    }
  }

  /** `POST /system/scale-function`: the controller's to do. */
  scaleTo(replicas: number): Promise<{ replicas: number }> {
    if (this.closed) return Promise.reject(this.closed);
    return this.capacity.scaleTo(this.spec.name, replicas);
  }

  status(): FunctionStatusCounts {
    return { ...this.capacity.counts(this.spec.name), inFlight: this.inFlight, queued: this.waiters.length, invocationCount: this.invocationCount };
  }

  instanceIds(): string[] {
    return this.instances().map((i) => i.id);
  }

  /** The instances taking calls, as the controller lists them to every edge. */
  instances(): InstanceInfo[] {
    return this.capacity.instances(this.spec.name);
  }

  /** Takes no more calls; those waiting for a slot get `refusal` (calls in flight finish). */
  async close(refusal = new InvocationError(503, 'gateway is shutting down')): Promise<void> {
    this.closed = refusal;
    for (const waiter of this.waiters.splice(0)) waiter.reject(refusal);
    for (const [event, listener] of Object.entries(this.forward)) this.capacity.off(event as keyof FunctionEvents, listener as never);
  }

  private async run(invocation: Invocation, signal: AbortSignal): Promise<FunctionResponse> {
    if (this.spec.mode === 'oneshot') return await this.capacity.runOnce(this.spec.name, invocation, signal);
    const tried = new Set<string>();
    for (;;) {
      const instance = await this.pick(signal, tried);
      this.count(instance, +1);
      try {
        return await invokeInstance(instance, invocation, signal);
      } catch (error) {
        // A stuck call: the instance is stopped once it is otherwise idle.
        if (signal.aborted) this.capacity.retire(this.spec.name, instance.id, 'timeout');
        else if (error instanceof InstanceGoneError) {
          // The process or container died (or another took its address): no more calls to it,
          // whether or not the runtime has noticed yet. The call ran nowhere: another instance takes it.
          this.capacity.retire(this.spec.name, instance.id, 'unreachable');
          tried.add(instance.id);
          if (tried.size < MAX_TRIES) continue;
          // Nothing ran anywhere: the caller may send it again.
          throw new InvocationError(503, `no instance of ${this.spec.name} took the call (${tried.size} were gone)`, { 'retry-after': '1' });
        }
        if (signal.aborted || error instanceof InvocationError) throw error;
        throw new InvocationError(502, `instance ${instance.id} failed: ${(error as Error).message}`);
      } finally {
        this.count(instance, -1);
      }
    }
  }

  private count(instance: InstanceInfo, delta: number): void {
    const now = (this.onInstance.get(instance.id) ?? 0) + delta;
    if (now > 0) this.onInstance.set(instance.id, now);
    else this.onInstance.delete(instance.id);
    this.capacity.used(this.spec.name, instance.id, now);
  }

  /**
   * The least busy instance while this edge's calls on it stay within its share (an instance's
   * concurrency split among the edges), else a new one when the limit allows, else the least busy;
   * never one in `avoid` (found gone by this call).
   */
  private async pick(signal: AbortSignal, avoid: Set<string>): Promise<InstanceInfo> {
    const share = Math.max(1, Math.ceil(Math.ceil(this.spec.maxConcurrency / this.spec.maxInstances) / this.capacity.edges()));
    for (;;) {
      const live = this.capacity.instances(this.spec.name).filter((i) => !avoid.has(i.id));
      const load = (i: InstanceInfo) => this.onInstance.get(i.id) ?? 0;
      const best = live.reduce<InstanceInfo | undefined>((a, b) => (a && load(a) <= load(b) ? a : b), undefined);
      if (best && load(best) < share) return best;
      let grown: InstanceInfo | null = null;
      try {
        grown = await this.capacity.grow(this.spec.name, signal);
      } catch (error) {
        // The controller is away (a takeover): the instances known serve on, beyond the share.
        if (!best || signal.aborted) throw error;
      }
      if (grown) return grown;
      if (best) return best;
      // At the limit with every instance retiring: wait a moment for one to go, then ask again.
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (signal.aborted) throw signal.reason;
    }
  }

  private acquire(signal: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(this.closed);
    const limit = Math.max(1, Math.ceil(this.spec.maxConcurrency / this.capacity.edges()));
    if (this.inFlight < limit) {
      this.inFlight++;
      return Promise.resolve();
    }
    if (this.waiters.length >= this.spec.maxQueued) {
      return Promise.reject(
        new InvocationError(429, `function ${this.spec.name} is busy: ${this.inFlight} calls in flight and ${this.waiters.length} waiting`, {
          'retry-after': '1',
        }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = { resolve, reject };
      this.waiters.push(waiter);
      signal.addEventListener(
        'abort',
        () => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /** Hands the slot to the next waiter, if any. */
  private release(): void {
    const next = this.waiters.shift();
    if (next) next.resolve();
    else this.inFlight--;
  }
}
