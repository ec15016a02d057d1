// The state the edges of one gateway tier share, so that any edge answers the same: the records of
// async calls and the rate-limit counters. One port, one adapter per file (memory.ts: this process
// only; postgres.ts: every edge on one database), picked from a URL by sharedState in index.ts.
import type { Store } from 'express-rate-limit';
import type { CallRecord } from '../calls.js';

/** Where a call is in its life: accepted (0), running an attempt (1), that attempt settled (2). */
export type CallPhase = 0 | 1 | 2;

/** A call's whole record as an edge saw it at one point of the call's life. */
export interface CallWrite {
  record: CallRecord;
  phase: CallPhase;
}

/**
 * Whether `next` is later in the call's life than `previous`: a later attempt, or a later phase of
 * the same attempt. Edges write a call's records in any order; an earlier one never replaces a later.
 */
export const supersedes = (next: CallWrite, previous: CallWrite): boolean =>
  next.record.attempts > previous.record.attempts || (next.record.attempts === previous.record.attempts && next.phase > previous.phase);

/** The records of async calls, kept for a time after their last change. */
export interface CallRecords {
  /** Keeps the record unless the one kept is later (see supersedes). May wait in a buffer until `flush`. */
  put(write: CallWrite): void;
  /**
   * Resolves once every record put before the call is where `get` finds it, whichever edge asks.
   * Never rejects: a failed write is reported to the adapter's onError, and the call goes on.
   */
  flush(): Promise<void>;
  get(callId: string): Promise<CallRecord | undefined>;
  /** Writes what waits in the buffer. */
  close(): Promise<void>;
}

/** What the edges share: call records and rate-limit counters. */
export interface SharedState {
  /** 'memory': this process's own; 'postgres': shared by every edge on the database. */
  readonly kind: 'memory' | 'postgres';
  readonly calls: CallRecords;
  /** A store of counters for one rate limiter (its keys under `prefix`); undefined: express-rate-limit's memory store. */
  rateLimitStore(prefix: string, windowMs: number): Store | undefined;
  /** Writes what is buffered, stops timers and closes connections. */
  close(): Promise<void>;
}

export interface SharedStateOptions {
  /** How long a call's record is kept after its last change. */
  callResultSeconds: number;
  /** Failed writes and lost connections (default: console.warn). */
  onError?: (error: Error) => void;
}
