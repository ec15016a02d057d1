import type { FunctionResponse } from '@platform/function-contract';
import type { BatchHandler, Queue } from '@platform/queue';
import type { AsyncCall } from './async-worker.js';
import type { FunctionPool } from './pool.js';

export type CallState = 'queued' | 'running' | 'succeeded' | 'failed';

/** What `GET /system/calls/<id>` answers about an async call. */
export interface CallRecord {
  callId: string;
  function: string;
  status: CallState;
  acceptedAt: string;
  updatedAt: string;
  /** Deliveries so far (a failed attempt is retried with backoff). */
  attempts: number;
  /** The function's response, once it answered; absent for calls combined into a batch invocation. */
  result?: { status: number; headers: Record<string, string | string[]>; body: string };
  /** Why the last attempt failed, while it is retried or after the last attempt. */
  error?: string;
}

/**
 * Status and result of async calls, kept in this gateway's memory for `ttlSeconds` (at most
 * `maxEntries`, the oldest dropped first). Each gateway knows the calls it accepted or ran:
 * with several gateways on one queue, ask the one that ran the call.
 */
export class CallStore {
  private readonly calls = new Map<string, CallRecord & { expires: number }>();

  constructor(
    private readonly ttlSeconds: number,
    private readonly maxEntries = 10_000,
  ) {}

  get(callId: string): CallRecord | undefined {
    const record = this.calls.get(callId);
    if (!record) return undefined;
    if (record.expires <= Date.now()) {
      this.calls.delete(callId);
      return undefined;
    }
    const { expires: _expires, ...rest } = record;
    return rest;
  }

  has(callId: string): boolean {
    return this.get(callId) !== undefined;
  }

  update(callId: string, fn: string, change: Partial<CallRecord>, acceptedAt?: number): void {
    const now = Date.now();
    const previous = this.calls.get(callId);
    this.calls.delete(callId); // re-inserted last: the Map's order is the age order
    const record = {
      callId,
      function: fn,
      status: 'queued' as CallState,
      attempts: 0,
      acceptedAt: new Date(acceptedAt ?? now).toISOString(),
      ...(previous && previous.expires > now ? previous : {}),
      ...change,
      updatedAt: new Date(now).toISOString(),
      expires: now + this.ttlSeconds * 1_000,
    };
    this.calls.set(callId, record);
    this.prune(now);
  }

  accepted(call: AsyncCall): void {
    if (this.has(call.callId)) return; // already picked up by the worker
    this.update(call.callId, call.function, { status: 'queued' }, call.acceptedAt);
  }

  /** Called with the pool's callFinished: records the response of a call this store knows. */
  finished(callId: string, fn: string, response: FunctionResponse): void {
    if (!this.calls.has(callId)) return;
    this.update(callId, fn, {
      result: { status: response.status, headers: response.headers ?? {}, body: response.body ?? '' },
    });
  }

  /**
   * The queue as the async worker sees it, with every delivered call recorded: running while
   * its batch is handled, then succeeded (function answered below 400), failed (answered 4xx,
   * or its last attempt failed) or queued again for a retry.
   */
  recordingQueue(queue: Queue): Queue {
    const consume: Queue['consume'] = (handler, options) => {
      const recorded: BatchHandler = async (messages) => {
        const calls = new Map<string, AsyncCall>();
        for (const message of messages) {
          try {
            const call = JSON.parse(message.body) as AsyncCall;
            calls.set(message.id, call);
            // A new attempt: what an earlier one answered no longer says how this call ends.
            this.update(call.callId, call.function, { status: 'running', attempts: message.attempt, error: undefined, result: undefined }, call.acceptedAt);
          } catch {
            // not a call: the worker reports it
          }
        }
        const outcome = await handler(messages);
        const failed = new Map((outcome?.failed ?? []).map((f) => [f.id, f.error]));
        for (const message of messages) {
          const call = calls.get(message.id);
          if (!call) continue;
          const error = failed.get(message.id);
          if (error !== undefined) {
            // The queue's own limit: the record says failed exactly when the queue gives up.
            const last = message.attempt >= queue.maxAttempts;
            this.update(call.callId, call.function, { status: last ? 'failed' : 'queued', error });
          } else {
            const status = this.get(call.callId)?.result?.status;
            this.update(call.callId, call.function, { status: status !== undefined && status >= 400 ? 'failed' : 'succeeded' });
          }
        }
        return outcome;
      };
      return queue.consume(recorded, options);
    };
    return {
      maxAttempts: queue.maxAttempts,
      enqueue: (body) => queue.enqueue(body),
      enqueueMany: (bodies) => queue.enqueueMany(bodies),
      consume,
      depth: () => queue.depth(),
      deadLetters: (limit) => queue.deadLetters(limit),
      close: () => queue.close(),
    };
  }

  /** Records the responses of calls the store knows, from the pools' callFinished events. */
  watch(pools: Iterable<FunctionPool>): void {
    for (const pool of pools) {
      pool.on('callFinished', ({ callId, function: fn, response }) => this.finished(callId, fn, response));
    }
  }

  private prune(now: number): void {
    for (const [id, record] of this.calls) {
      if (this.calls.size <= this.maxEntries && record.expires > now) break;
      this.calls.delete(id);
    }
  }
}
