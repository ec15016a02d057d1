import type { FunctionResponse } from '@platform/function-contract';
import type { BatchHandler, Queue } from '@platform/queue';
import type { AsyncCall } from './async-worker.js';
import type { FunctionPool } from './pool.js';
import { MemoryCallRecords } from './store/memory.js';
import type { CallPhase, CallRecords, CallWrite } from './store/state.js';

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

const parseCall = (body: string): AsyncCall | undefined => {
  try {
    const call = JSON.parse(body) as AsyncCall;
    return typeof call?.callId === 'string' ? call : undefined;
  } catch {
    return undefined; // not a call: the worker reports it
  }
};

/**
 * Status and result of async calls, kept `ttlSeconds` after their last change in `records`: this
 * gateway's memory by default, or records every edge on one database shares (store/postgres.ts),
 * so that any edge answers for a call whichever edge accepted or ran it.
 *
 * What is written: a call's record when it is accepted (stored before its 202 is sent, so any edge
 * finds the call its caller was told of), when an attempt starts (not waited for), and when the
 * attempt settled (stored before the queue hears the outcome: a call acknowledged is never left
 * `running`). Each is the call's whole record, ordered by attempt and phase, so writes of several
 * edges may land in any order; an adapter may gather them into one write per batch.
 */
export class CallStore {
  /** What this gateway itself recorded, in its memory (the records themselves when none are shared). */
  private readonly local: MemoryCallRecords;
  private readonly records: CallRecords;
  /** Calls in a batch this gateway is handling, with the answer their invocation got once it did. */
  private readonly running = new Map<string, { result?: CallRecord['result'] }>();

  constructor(ttlSeconds: number, records?: CallRecords) {
    this.local = records instanceof MemoryCallRecords ? records : new MemoryCallRecords(ttlSeconds);
    this.records = records ?? this.local;
  }

  /** What this gateway itself last recorded of a call, at once (diagnostics, tests); `read` answers for every edge. */
  get(callId: string): CallRecord | undefined {
    return this.local.peek(callId);
  }

  /** The call's record, whichever edge wrote it. */
  read(callId: string): Promise<CallRecord | undefined> {
    return this.records.get(callId);
  }

  /** Records an accepted call; resolves once every edge can read it. */
  accepted(call: AsyncCall): Promise<void> {
    this.put(call, 0, { status: 'queued', attempts: 0 });
    return this.records.flush();
  }

  /** Called with the pool's callFinished: keeps the response of a call this gateway is running. */
  finished(callId: string, _fn: string, response: FunctionResponse): void {
    const running = this.running.get(callId);
    if (running) running.result = { status: response.status, headers: response.headers ?? {}, body: response.body ?? '' };
  }

  /**
   * The queue as the routes see it, with every call recorded as it is queued: the record is written
   * while the call is, and enqueue resolves (the route answers 202) once both are stored. A call
   * the queue refused leaves a record no one is told the id of.
   */
  acceptingQueue(queue: Queue): Queue {
    const accept = (body: string) => {
      const call = parseCall(body);
      if (call) this.put(call, 0, { status: 'queued', attempts: 0 });
    };
    return {
      ...this.passThrough(queue),
      enqueue: async (body) => {
        accept(body);
        const [id] = await Promise.all([queue.enqueue(body), this.records.flush()]);
        return id;
      },
      enqueueMany: async (bodies) => {
        for (const body of bodies) accept(body);
        const [ids] = await Promise.all([queue.enqueueMany(bodies), this.records.flush()]);
        return ids;
      },
    };
  }

  /**
   * The queue as the async worker sees it, with every delivered call recorded: running while
   * its batch is handled, then succeeded (function answered below 400), failed (answered 4xx,
   * or its last attempt failed) or queued again for a retry.
   */
  recordingQueue(queue: Queue): Queue {
    const consume: Queue['consume'] = (handler, options) => {
      const recorded: BatchHandler = async (messages) => {
        const calls = new Map<string, { call: AsyncCall; running: { result?: CallRecord['result'] } }>();
        for (const message of messages) {
          const call = parseCall(message.body);
          if (!call) continue;
          // A new attempt: what an earlier one answered no longer says how this call ends.
          const running = {};
          calls.set(message.id, { call, running });
          this.running.set(call.callId, running);
          this.put(call, 1, { status: 'running', attempts: message.attempt });
        }
        try {
          const outcome = await handler(messages);
          const failed = new Map((outcome?.failed ?? []).map((f) => [f.id, f]));
          for (const message of messages) {
            const entry = calls.get(message.id);
            if (!entry) continue;
            const { call, running } = entry;
            const { result } = running;
            const failure = failed.get(message.id);
            if (failure !== undefined) {
              // The queue's own limit: the record says failed exactly when the queue gives up.
              const last = failure.final === true || message.attempt >= queue.maxAttempts;
              this.put(call, 2, { status: last ? 'failed' : 'queued', attempts: message.attempt, result, error: failure.error });
            } else {
              const status = result?.status;
              this.put(call, 2, { status: status !== undefined && status >= 400 ? 'failed' : 'succeeded', attempts: message.attempt, result });
            }
          }
          await this.records.flush();
          return outcome;
        } finally {
          for (const { call, running } of calls.values()) if (this.running.get(call.callId) === running) this.running.delete(call.callId);
        }
      };
      return queue.consume(recorded, options);
    };
    return { ...this.passThrough(queue), consume };
  }

  /** Records the responses of calls being run here, from the pools' callFinished events. */
  watch(pools: Iterable<FunctionPool>): void {
    for (const pool of pools) {
      pool.on('callFinished', ({ callId, function: fn, response }) => this.finished(callId, fn, response));
    }
  }

  private put(
    call: AsyncCall,
    phase: CallPhase,
    { status, attempts, result, error }: { status: CallState; attempts: number; result?: CallRecord['result'] | undefined; error?: string },
  ): void {
    const write: CallWrite = {
      phase,
      record: {
        callId: call.callId,
        function: call.function,
        status,
        acceptedAt: new Date(call.acceptedAt).toISOString(),
        updatedAt: new Date().toISOString(),
        attempts,
        ...(result === undefined ? {} : { result }),
        ...(error === undefined ? {} : { error }),
      },
    };
    this.local.put(write);
    if (this.records !== this.local) this.records.put(write);
  }

  private passThrough(queue: Queue): Queue {
    return {
      maxAttempts: queue.maxAttempts,
      enqueue: (body) => queue.enqueue(body),
      enqueueMany: (bodies) => queue.enqueueMany(bodies),
      consume: (handler, options) => queue.consume(handler, options),
      depth: () => queue.depth(),
      deadLetters: (limit) => queue.deadLetters(limit),
      release: (consumer) => queue.release(consumer),
      close: () => queue.close(),
    };
  }
}
