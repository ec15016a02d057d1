-- Up Migration
-- The PostgreSQL adapter of @platform/queue (packages/queue/src/postgres-queue.ts).
-- One row per message not yet acknowledged; acknowledging deletes it.
CREATE TABLE IF NOT EXISTS fn_queue (
  id BIGSERIAL PRIMARY KEY,
  queue TEXT NOT NULL,
  body TEXT NOT NULL,
  -- Deliveries so far: 0 while waiting for the first one.
  attempt INT NOT NULL DEFAULT 0,
  -- Not delivered before this: now() when enqueued, pushed out by the backoff after a failure.
  available_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  -- Set while delivered; once it passes unacknowledged, another consumer may take the message.
  locked_until TIMESTAMPTZ,
  locked_by TEXT,
  last_error TEXT,
  enqueued_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- The claim query walks one queue in id order (FIFO), skipping rows in flight or waiting for a retry.
CREATE INDEX IF NOT EXISTS fn_queue_claim ON fn_queue (queue, id);

-- Messages that failed every attempt, with the last error; never delivered again.
CREATE TABLE IF NOT EXISTS fn_dead_letters (
  id BIGINT PRIMARY KEY,
  queue TEXT NOT NULL,
  body TEXT NOT NULL,
  attempt INT NOT NULL,
  error TEXT NOT NULL,
  enqueued_at TIMESTAMPTZ NOT NULL,
  dead_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS fn_dead_letters_queue ON fn_dead_letters (queue, dead_at, id);

-- Down Migration
DROP TABLE IF EXISTS fn_dead_letters;
DROP TABLE IF EXISTS fn_queue;
