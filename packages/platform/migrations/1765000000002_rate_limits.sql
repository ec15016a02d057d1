-- Up Migration
-- Rate-limit counters shared by every edge: hits of one key (a limiter's prefix and a client's
-- address or cookie digest) in its current window. Counters are worth no WAL: after a crash of
-- the server the table starts empty, which at worst gives each client one more window's calls.
CREATE UNLOGGED TABLE IF NOT EXISTS platform_rate_limits (
  key TEXT PRIMARY KEY,
  hits INTEGER NOT NULL,
  reset_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS platform_rate_limits_reset_at ON platform_rate_limits (reset_at);

-- Down Migration
DROP TABLE IF EXISTS platform_rate_limits;
