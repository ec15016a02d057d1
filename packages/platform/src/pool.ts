import { EventEmitter } from 'node:events';
import type { FunctionResponse, Invocation } from '@platform/function-contract';
import type { FunctionSpec } from '@platform/function-contract/manifest';
import type { Instance, Runtime } from './runtimes/runtime.js';
import { InvocationError } from './errors.js';
import { invokeInstance } from './instance-client.js';

/** Connection errors that mean the instance is gone, not that one call failed. */
const gone = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH']);

interface WarmSlot {
  instance: Instance;
  inFlight: number;
  lastUsed: number;
  /** Takes no new calls; stopped once its calls are done (idle, or after a timed-out call). */
  retiring: boolean;
  /** Why it is being stopped, once it is. */
  stopReason?: string;
}

export interface FunctionStatusCounts {
  replicas: number;
  availableReplicas: number;
  inFlight: number;
  queued: number;
  invocationCount: number;
  coldStarts: number;
}

/** Events for observers (dashboard, metrics): instance started/stopped, call finished. */
export interface PoolEvents {
  instanceStarted: [{ function: string; instance: string; pid?: number | undefined; coldStartMs: number; reason: string }];
  instanceStopped: [{ function: string; instance: string; reason: string }];
  /** `response` is what the caller got: the function's answer, or the gateway's error for it. */
  callFinished: [{ function: string; callId: string; status: number; durationMs: number; response: FunctionResponse }];
  scaled: [{ function: string; from: number; to: number }];
}

/**
 * One function's instances and limits, the same for every runtime: at most maxConcurrency
 * calls in flight and maxQueued waiting (beyond that 429), each call bounded by the manifest's
 * timeout (504), warm instances started on demand up to maxInstances and stopped when idle.
 */
export class FunctionPool extends EventEmitter<PoolEvents> {
  private readonly slots: WarmSlot[] = [];
  private readonly starting: Promise<WarmSlot>[] = [];
  private readonly waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  private inFlight = 0;
  private oneShotsRunning = 0;
  private invocationCount = 0;
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

  async invoke(invocation: Invocation): Promise<FunctionResponse> {
    const started = Date.now();
    const timeoutMs = this.spec.timeoutSeconds * 1_000;
    const signal = AbortSignal.timeout(timeoutMs);
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

  /**
   * Sets the number of warm instances now (`POST /system/scale-function`): starts instances up
   * to `replicas` (at most maxInstances) or stops idle ones down to it. The idle reaper still
   * applies afterwards, so instances started this way go away after idleSeconds without calls.
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
    const starts: Promise<WarmSlot>[] = [];
    while (live() < replicas) starts.push(this.startInstance('scaled'));
    const stops: Promise<void>[] = [];
    // Fewer: the least busy go first; their calls in flight finish (drain) before they stop.
    const candidates = this.slots.filter((s) => !s.retiring).sort((a, b) => a.inFlight - b.inFlight);
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

  status(): FunctionStatusCounts {
    const live = this.slots.filter((s) => !s.retiring).length;
    return {
      replicas: this.slots.length + this.starting.length + this.oneShotsRunning,
      availableReplicas: live + this.oneShotsRunning,
      inFlight: this.inFlight,
      queued: this.waiters.length,
      invocationCount: this.invocationCount,
      coldStarts: this.coldStarts,
    };
  }

  instanceIds(): string[] {
    return this.slots.map((s) => s.instance.id);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.reaper);
    for (const waiter of this.waiters.splice(0)) waiter.reject(new InvocationError(503, 'gateway is shutting down'));
    await Promise.allSettled(this.starting);
    await Promise.all(this.slots.map((slot) => this.stop(slot, 'drain', 'shutdown')));
  }

  private async run(invocation: Invocation, signal: AbortSignal): Promise<FunctionResponse> {
    if (this.spec.mode === 'oneshot') {
      this.oneShotsRunning++;
      this.coldStarts++;
      try {
        return await this.runtime.runOnce(this.spec, invocation, signal);
      } finally {
        this.oneShotsRunning--;
      }
    }
    const slot = await this.pick(signal);
    slot.inFlight++;
    try {
      return await invokeInstance(slot.instance.url, invocation, signal);
    } catch (error) {
      if (signal.aborted) slot.retiring = true; // a stuck call: stop the instance once it is otherwise idle
      // Nothing listens there any more (the process or container died): take no more calls to it,
      // whether or not the runtime has noticed the exit yet.
      if (!signal.aborted && gone.has((error as NodeJS.ErrnoException).code ?? '')) {
        slot.retiring = true;
        slot.stopReason ??= 'instance unreachable';
      }
      if (signal.aborted || error instanceof InvocationError) throw error;
      throw new InvocationError(502, `instance ${slot.instance.id} failed: ${(error as Error).message}`);
    } finally {
      slot.inFlight--;
      slot.lastUsed = Date.now();
      if (slot.retiring && slot.inFlight === 0) void this.stop(slot, 'kill', 'call timed out');
    }
  }

  /** The least busy live instance, or a new one when all are at their share and the limit allows. */
  private async pick(signal: AbortSignal): Promise<WarmSlot> {
    const live = this.slots.filter((s) => !s.retiring);
    const best = live.reduce<WarmSlot | undefined>((a, b) => (a && a.inFlight <= b.inFlight ? a : b), undefined);
    const share = Math.ceil(this.spec.maxConcurrency / this.spec.maxInstances);
    const canGrow = live.length + this.starting.length < this.spec.maxInstances;
    if (best && (best.inFlight < share || !canGrow)) return best;
    const next = canGrow ? this.startInstance('call') : this.starting[0]!;
    return await Promise.race([next, new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))]);
  }

  private startInstance(reason: 'call' | 'scaled'): Promise<WarmSlot> {
    const began = Date.now();
    this.coldStarts++;
    const promise = this.runtime.startInstance(this.spec).then((instance) => {
      const slot: WarmSlot = { instance, inFlight: 0, lastUsed: Date.now(), retiring: false };
      this.slots.push(slot);
      const pid = (instance as { child?: { pid?: number } }).child?.pid;
      this.emit('instanceStarted', { function: this.spec.name, instance: instance.id, pid, coldStartMs: Date.now() - began, reason });
      void instance.exited.then(() => this.forget(slot, slot.stopReason ?? 'exited'));
      if (this.closed) void this.stop(slot, 'drain', 'shutdown');
      return slot;
    });
    this.starting.push(promise);
    const done = () => this.starting.splice(this.starting.indexOf(promise), 1);
    promise.then(done, done);
    return promise;
  }

  private stopIdle(): void {
    const idleMs = this.spec.idleSeconds * 1_000;
    for (const slot of this.slots) {
      if (!slot.retiring && slot.inFlight === 0 && Date.now() - slot.lastUsed >= idleMs) {
        void this.stop(slot, 'drain', 'idle');
      }
    }
  }

  private async stop(slot: WarmSlot, how: 'drain' | 'kill', reason: string): Promise<void> {
    slot.retiring = true;
    slot.stopReason ??= reason;
    await this.runtime.stopInstance(slot.instance, how).catch(() => {});
    this.forget(slot, reason);
  }

  private forget(slot: WarmSlot, reason: string): void {
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    this.slots.splice(index, 1);
    this.emit('instanceStopped', { function: this.spec.name, instance: slot.instance.id, reason });
  }

  private acquire(signal: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new InvocationError(503, 'gateway is shutting down'));
    if (this.inFlight < this.spec.maxConcurrency) {
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
