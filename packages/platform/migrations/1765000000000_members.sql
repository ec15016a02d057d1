-- Up Migration
-- Every live edge and controller of the gateway tier, as each last reported itself (a heartbeat).
-- A member not seen for a few seconds is gone; GET /system/gateways lists the rest.
CREATE TABLE IF NOT EXISTS platform_members (
  id TEXT PRIMARY KEY,
  role TEXT NOT NULL CHECK (role IN ('edge', 'controller')),
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  url TEXT,
  leader BOOLEAN NOT NULL DEFAULT FALSE,
  started_at TIMESTAMPTZ NOT NULL,
  last_seen_at TIMESTAMPTZ NOT NULL,
  in_flight INTEGER NOT NULL DEFAULT 0,
  details JSONB NOT NULL DEFAULT '{}'
);

-- Down Migration
DROP TABLE IF EXISTS platform_members;
