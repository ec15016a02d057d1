-- Up Migration
-- Functions deployed through the API (POST /system/functions), kept by the controller: a new
-- controller, or one restarted, runs them again. Those of the app's functions folder are not here.
CREATE TABLE IF NOT EXISTS platform_functions (
  name TEXT PRIMARY KEY,
  manifest JSONB NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Down Migration
DROP TABLE IF EXISTS platform_functions;
