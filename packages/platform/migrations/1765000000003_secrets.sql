-- Up Migration
-- Secrets no one configured (e.g. the cookie key, the invoke token), made once by the first
-- gateway that needed one and read by every other: the first insert wins, later ones do nothing.
CREATE TABLE IF NOT EXISTS platform_secrets (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE IF EXISTS platform_secrets;
