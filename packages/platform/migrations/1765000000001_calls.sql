-- Up Migration
-- The status and result of async calls (GET /system/calls/<id>), written by whichever edge
-- accepted or ran a call and read by any edge. A write lands only if it is later in the call's
-- life than the row's: a later attempt, or a later phase of the same attempt (0 accepted,
-- 1 running, 2 settled), so edges writing out of order never step a record back.
-- Rows past expires_at are answered by no one and deleted by the edges from time to time.
CREATE TABLE IF NOT EXISTS platform_calls (
  call_id TEXT PRIMARY KEY,
  function TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
  attempts INTEGER NOT NULL,
  phase SMALLINT NOT NULL,
  accepted_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL,
  expires_at TIMESTAMPTZ NOT NULL,
  result JSONB,
  error TEXT
);
CREATE INDEX IF NOT EXISTS platform_calls_expires_at ON platform_calls (expires_at);

-- Down Migration
DROP TABLE IF EXISTS platform_calls;
