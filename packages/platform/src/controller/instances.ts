import { EventEmitter, once } from 'node:events';
import type { FunctionResponse, Invocation } from '@platform/function-contract';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import type { Instance, Runtime } from '../runtimes/runtime.js';
import type { FunctionEvents, InstanceInfo } from '../capacity.js';
import { InvocationError } from '../errors.js';

interface Slot {
  instance: Instance;
  /** What edges are told of it. */
  info: InstanceInfo;
  /** Calls in flight on it, as each edge last reported them. */
  inFlight: Map<string, number>;
  lastUsed: number;
  /** Takes no new calls; stopped once its calls are done (idle, unreachable, or after a stuck call). */
  retiring: boolean;
  /** Why it is being stopped, once it is. */
  stopReason?: string;
  /** Stopped at once rather than drained when its calls are done (a stuck call). */
  kill?: boolean;
  stopping?: Promise<void>;
}

const total = (slot: Slot) => {
  let sum = 0;
  for (const n of slot.inFlight.values()) sum += n;
  return sum;
};

/**
 * One function's instances, kept by the controller: started on demand up to maxInstances, stopped
 * when no edge used them for idleSeconds, counted, and announced as they come and go.
 */
export class FunctionInstances extends EventEmitter<FunctionEvents> {
  private readonly slots: Slot[] = [];
  private readonly starting: Array<Promise<Slot>> = [];
  private oneShotsRunning = 0;
  private coldStarts = 0;
  private readonly reaper: NodeJS.Timeout;
  private closed = false;

  constructor(
    readonly spec: FunctionSpec,
    private readonly runtime: Runtime,
  ) {
    super();
    const every = Math.min(1_000, (spec.idleSeconds * 1_000) / 4);
    this.reaper = setInterval(() => this.stopIdle(), every).unref();
  }

  list(): InstanceInfo[] {
    return this.slots.filter((s) => !s.retiring).map(({ info }) => info);
  }

  async grow(signal: AbortSignal): Promise<InstanceInfo | null> {
    for (;;) {
      if (this.closed) throw new InvocationError(503, 'gateway is shutting down');
      let next: Promise<Slot | void>;
      // A retiring instance holds its place until it has stopped: never more than maxInstances run.
      if (this.held() < this.spec.maxInstances) next = this.start('call');
      else if (this.starting.length > 0) next = this.starting[0]!;
      else if (this.slots.some((s) => s.retiring)) next = once(this, 'instanceStopped').then(() => {});
      else return null;
      const slot = await Promise.race([next, new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))]);
      if (slot) return slot.info;
    }
  }

  /** Instances running or starting, retiring ones included: what counts against maxInstances. */
  private held(): number {
    return this.slots.length + this.starting.length;
  }

  used(edge: string, id: string, inFlight: number): void {
    const slot = this.slots.find((s) => s.instance.id === id);
    if (!slot) return;
    if (inFlight > 0) slot.inFlight.set(edge, inFlight);
    else slot.inFlight.delete(edge);
    slot.lastUsed = Date.now();
    if (slot.retiring && total(slot) === 0) void this.stop(slot, slot.kill ? 'kill' : 'drain', slot.stopReason ?? 'retired');
  }

  /** An edge that is gone holds no calls any more: its last report must not keep instances from idling. */
  forgetEdge(edge: string): void {
    for (const slot of this.slots) {
      if (!slot.inFlight.delete(edge)) continue;
      slot.lastUsed = Date.now();
      if (slot.retiring && total(slot) === 0) void this.stop(slot, slot.kill ? 'kill' : 'drain', slot.stopReason ?? 'retired');
    }
  }

  retire(id: string, reason: 'unreachable' | 'timeout'): void {
    const slot = this.slots.find((s) => s.instance.id === id);
    if (!slot) return;
    slot.retiring = true;
    slot.stopReason ??= reason === 'timeout' ? 'call timed out' : 'instance unreachable';
    slot.kill = reason === 'timeout';
    if (total(slot) === 0) void this.stop(slot, slot.kill ? 'kill' : 'drain', slot.stopReason);
  }

  async runOnce(invocation: Invocation, signal: AbortSignal): Promise<FunctionResponse> {
    if (this.closed) throw new InvocationError(503, 'gateway is shutting down');
    this.oneShotsRunning++;
    this.coldStarts++;
    try {
      return await this.runtime.runOnce(this.spec, invocation, signal);
    } finally {
      this.oneShotsRunning--;
    }
  }

  /**
   * Sets the number of warm instances now: starts up to `replicas` (at most maxInstances) or stops
   * the least busy down to it. The idle reaper still applies afterwards.
   */
  async scaleTo(replicas: number): Promise<{ replicas: number }> {
    if (this.closed) throw new InvocationError(503, 'gateway is shutting down');
    if (this.spec.mode === 'oneshot') {
      if (replicas !== 0) throw new InvocationError(400, `function ${this.spec.name} runs one-shot: it has no warm instances to scale`);
      return { replicas: 0 };
    }
    if (!Number.isInteger(replicas) || replicas < 0 || replicas > this.spec.maxInstances) {
      throw new InvocationError(400, `replicas must be an integer from 0 to ${this.spec.maxInstances} (maxInstances of ${this.spec.name})`);
    }
    const live = () => this.slots.filter((s) => !s.retiring).length + this.starting.length;
    const from = live();
    const starts: Array<Promise<Slot>> = [];
    while (live() < replicas && this.held() < this.spec.maxInstances) starts.push(this.start('scaled'));
    const stops: Array<Promise<void>> = [];
    // Fewer: the least busy go first; their calls in flight finish (drain) before they stop.
    const candidates = this.slots.filter((s) => !s.retiring).sort((a, b) => total(a) - total(b));
    while (live() > replicas && candidates.length) stops.push(this.stop(candidates.shift()!, 'drain', 'scaled'));
    if (from !== replicas) this.emit('scaled', { function: this.spec.name, from, to: replicas });
    try {
      await Promise.all([...starts, ...stops]);
    } catch (error) {
      throw new InvocationError(502, `could not start an instance of ${this.spec.name}: ${(error as Error).message}`);
    }
    for (const slot of this.slots) slot.lastUsed = Date.now();
    return { replicas: live() };
  }

  counts(): { replicas: number; availableReplicas: number; coldStarts: number } {
    const live = this.slots.filter((s) => !s.retiring).length;
    return {
      replicas: this.slots.length + this.starting.length + this.oneShotsRunning,
      availableReplicas: live + this.oneShotsRunning,
      coldStarts: this.coldStarts,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.reaper);
    await Promise.allSettled(this.starting);
    await Promise.all(this.slots.map((slot) => this.stop(slot, 'drain', 'shutdown')));
  }

  /**
   * Takes no more calls (the function was updated or removed): each instance stops once the calls
   * it has are done, and none waits longer than a call may take. Resolves once all have stopped.
   */
  async retireAll(reason: string): Promise<void> {
    this.closed = true;
    clearInterval(this.reaper);
    await Promise.allSettled(this.starting);
    for (const slot of this.slots) {
      slot.retiring = true;
      slot.stopReason ??= reason;
      if (total(slot) === 0) void this.stop(slot, 'drain', reason);
    }
    const deadline = AbortSignal.timeout((this.spec.timeoutSeconds + 5) * 1_000);
    while (this.slots.length > 0 && !deadline.aborted) await once(this, 'instanceStopped', { signal: deadline }).catch(() => {});
    await Promise.all(this.slots.map((slot) => this.stop(slot, 'drain', reason)));
  }

  /** Takes over the instances a controller before this one left running (see Runtime.adopt); they idle out as any other. */
  async adopt(): Promise<string[]> {
    if (!this.runtime.adopt || this.spec.mode === 'oneshot') return [];
    const found = await this.runtime.adopt(this.spec);
    for (const instance of found) this.add(instance, 'adopted', 0);
    return found.map((i) => i.id);
  }

  private start(reason: 'call' | 'scaled'): Promise<Slot> {
    const began = Date.now();
    this.coldStarts++;
    const promise = this.runtime.startInstance(this.spec).then((instance) => this.add(instance, reason, Date.now() - began));
    this.starting.push(promise);
    const done = () => this.starting.splice(this.starting.indexOf(promise), 1);
    promise.then(done, done);
    return promise;
  }

  private add(instance: Instance, reason: string, coldStartMs: number): Slot {
    const pid = (instance as { child?: { pid?: number } }).child?.pid;
    const info: InstanceInfo = { id: instance.id, url: instance.url, invokeToken: instance.invokeToken, startedAt: Date.now(), coldStartMs, reason, pid };
    const slot: Slot = { instance, info, inFlight: new Map(), lastUsed: Date.now(), retiring: false };
    this.slots.push(slot);
    this.emit('instanceStarted', { function: this.spec.name, instance: instance.id, pid, coldStartMs, reason });
    void instance.exited.then(() => this.forget(slot, slot.stopReason ?? 'exited'));
    if (this.closed) void this.stop(slot, 'drain', 'shutdown');
    return slot;
  }

  private stopIdle(): void {
    const idleMs = this.spec.idleSeconds * 1_000;
    for (const slot of this.slots) {
      if (!slot.retiring && total(slot) === 0 && Date.now() - slot.lastUsed >= idleMs) void this.stop(slot, 'drain', 'idle');
    }
  }

  private stop(slot: Slot, how: 'drain' | 'kill', reason: string): Promise<void> {
    slot.retiring = true;
    slot.stopReason ??= reason;
    slot.stopping ??= this.runtime
      .stopInstance(slot.instance, how)
      .catch(() => {})
      .then(() => this.forget(slot, reason));
    return slot.stopping;
  }

  private forget(slot: Slot, reason: string): void {
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    this.slots.splice(index, 1);
    this.emit('instanceStopped', { function: this.spec.name, instance: slot.instance.id, reason });
  }
}
