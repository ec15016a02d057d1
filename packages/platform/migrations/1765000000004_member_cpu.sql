-- Up Migration
-- How busy each member is: the share of one CPU core it used since its last heartbeat. The
-- controller scales the edges by it.
ALTER TABLE platform_members ADD COLUMN IF NOT EXISTS cpu REAL NOT NULL DEFAULT 0;

-- Down Migration
ALTER TABLE platform_members DROP COLUMN IF EXISTS cpu;
