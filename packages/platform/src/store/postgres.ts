// Shared state in PostgreSQL: every edge on the database answers the same. One small pool of
// connections for the call records and the rate-limit counters; rows past their time are deleted
// by every edge now and then (each skipping the rows another is deleting).
import pg from 'pg';
import { PostgresCallRecords, PRUNE_CALLS } from './postgres-calls.js';
import { PostgresRateLimitStore, PRUNE_RATE_LIMITS } from './postgres-rate-limits.js';
import type { SharedState, SharedStateOptions } from './state.js';

/** Connections of one edge at most: one write of call records, reads and rate-limit counts. */
const POOL_SIZE = 8;

export class PostgresState implements SharedState {
  readonly kind = 'postgres';
  readonly calls: PostgresCallRecords;
  private readonly pool: pg.Pool;
  private readonly onError: (error: Error) => void;
  private readonly pruner: NodeJS.Timeout;
  private pruning: Promise<void> | undefined;
  private closed: Promise<void> | undefined;

  constructor(url: string, { callResultSeconds, onError = (error) => console.warn(error.message) }: SharedStateOptions) {
    this.onError = onError;
    this.pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, connectionTimeoutMillis: 5_000, query_timeout: 10_000 });
    // An idle connection that breaks (the server restarted) is dropped by the pool; the next query opens another.
    this.pool.on('error', (error) => onError(error));
    this.calls = new PostgresCallRecords(this.pool, callResultSeconds, onError);
    // Often enough that a short keep (tests) is pruned within it; at most once a minute otherwise.
    const everyMs = Math.min(Math.max(callResultSeconds * 1_000, 1_000), 60_000);
    this.pruner = setInterval(() => void this.prune(), everyMs).unref();
  }

  rateLimitStore(prefix: string, windowMs: number): PostgresRateLimitStore {
    return new PostgresRateLimitStore(this.pool, prefix, windowMs);
  }

  /** Deletes expired call records and counters of ended windows. */
  prune(): Promise<void> {
    this.pruning ??= Promise.all([this.pool.query(PRUNE_CALLS), this.pool.query(PRUNE_RATE_LIMITS)])
      .then(
        () => undefined,
        (error: unknown) => this.onError(error as Error),
      )
      .finally(() => {
        this.pruning = undefined;
      });
    return this.pruning;
  }

  /** Once, however many times it is called (a gateway may be closed twice). */
  close(): Promise<void> {
    this.closed ??= (async () => {
      clearInterval(this.pruner);
      await this.calls.close();
      await this.pruning;
      await this.pool.end();
    })();
    return this.closed;
  }
}
