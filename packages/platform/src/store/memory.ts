// Shared state kept in this process's memory: for a gateway alone, without a database.
import type { CallRecord } from '../calls.js';
import { supersedes, type CallRecords, type CallWrite, type SharedState, type SharedStateOptions } from './state.js';

/** Call records in a Map, kept `ttlSeconds` after their last change; at most `maxEntries`, the oldest dropped first. */
export class MemoryCallRecords implements CallRecords {
  private readonly calls = new Map<string, CallWrite & { expires: number }>();

  constructor(
    private readonly ttlSeconds: number,
    private readonly maxEntries = 10_000,
  ) {}

  /** The record, at once. */
  peek(callId: string): CallRecord | undefined {
    const kept = this.calls.get(callId);
    if (!kept) return undefined;
    if (kept.expires <= Date.now()) {
      this.calls.delete(callId);
      return undefined;
    }
    return kept.record;
  }

  put(write: CallWrite): void {
    const now = Date.now();
    const { callId } = write.record;
    const previous = this.calls.get(callId);
    if (previous && previous.expires > now && !supersedes(write, previous)) return;
    this.calls.delete(callId); // re-inserted last: the Map's order is the age order
    this.calls.set(callId, { ...write, expires: now + this.ttlSeconds * 1_000 });
    this.prune(now);
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  async get(callId: string): Promise<CallRecord | undefined> {
    return this.peek(callId);
  }

  async close(): Promise<void> {}

  private prune(now: number): void {
    for (const [id, kept] of this.calls) {
      if (this.calls.size <= this.maxEntries && kept.expires > now) break;
      this.calls.delete(id);
    }
  }
}

/** Call records in memory; rate limits on express-rate-limit's memory store. */
export function memoryState({ callResultSeconds }: SharedStateOptions): SharedState {
  return {
    kind: 'memory',
    calls: new MemoryCallRecords(callResultSeconds),
    rateLimitStore: () => undefined,
    close: async () => {},
  };
}
