// Rate-limit counters in PostgreSQL (UNLOGGED table platform_rate_limits, migrations/
// 1765000000002_rate_limits.sql), as an express-rate-limit Store: every edge on the database counts
// into the same rows. A counted request costs one statement, an upsert that starts a new window
// when the key's has ended. Windows run on the database's clock, the same for every edge; the time
// left is answered as a duration, so an edge's own clock only ever measures from now.
import type pg from 'pg';
import type { ClientRateLimitInfo, Store } from 'express-rate-limit';

const INCREMENT = `
INSERT INTO platform_rate_limits AS r (key, hits, reset_at) VALUES ($1, 1, now() + $2::float8 * interval '1 millisecond')
ON CONFLICT (key) DO UPDATE SET
  hits = CASE WHEN r.reset_at > now() THEN r.hits + 1 ELSE 1 END,
  reset_at = CASE WHEN r.reset_at > now() THEN r.reset_at ELSE excluded.reset_at END
RETURNING hits, (extract(epoch FROM reset_at - now()) * 1000)::float8 AS reset_in_ms`;

const GET = `
SELECT hits, (extract(epoch FROM reset_at - now()) * 1000)::float8 AS reset_in_ms
FROM platform_rate_limits WHERE key = $1 AND reset_at > now()`;

const DECREMENT = `UPDATE platform_rate_limits SET hits = hits - 1 WHERE key = $1 AND reset_at > now() AND hits > 0`;

const RESET = `DELETE FROM platform_rate_limits WHERE key = $1`;

/** Counters of ended windows, a bounded number per statement; rows another edge is deleting are left to it. */
export const PRUNE_RATE_LIMITS = `
DELETE FROM platform_rate_limits WHERE key IN (
  SELECT key FROM platform_rate_limits WHERE reset_at <= now() LIMIT 10000 FOR UPDATE SKIP LOCKED)`;

interface Row {
  hits: number;
  reset_in_ms: number;
}

const info = (row: Row): ClientRateLimitInfo => ({ totalHits: row.hits, resetTime: new Date(Date.now() + row.reset_in_ms) });

/** One limiter's counters: its keys are stored under `prefix`, apart from every other limiter's. */
export class PostgresRateLimitStore implements Store {
  readonly localKeys = false;

  constructor(
    private readonly pool: pg.Pool,
    readonly prefix: string,
    private readonly windowMs: number,
  ) {}

  async increment(key: string): Promise<ClientRateLimitInfo> {
    const { rows } = await this.pool.query<Row>({ name: 'platform-rate-limit-increment', text: INCREMENT, values: [this.prefix + key, this.windowMs] });
    return info(rows[0]!);
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const { rows } = await this.pool.query<Row>({ name: 'platform-rate-limit-get', text: GET, values: [this.prefix + key] });
    return rows[0] && info(rows[0]);
  }

  async decrement(key: string): Promise<void> {
    await this.pool.query({ name: 'platform-rate-limit-decrement', text: DECREMENT, values: [this.prefix + key] });
  }

  async resetKey(key: string): Promise<void> {
    await this.pool.query({ name: 'platform-rate-limit-reset', text: RESET, values: [this.prefix + key] });
  }
}
