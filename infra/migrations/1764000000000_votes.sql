-- Up Migration
-- The original app's table, readable as it was: SELECT vote, COUNT(id) FROM votes GROUP BY vote.
-- voted_at orders a voter's votes so that a redelivered or older message never wins.
CREATE TABLE IF NOT EXISTS votes (
  id VARCHAR(255) NOT NULL UNIQUE,
  vote VARCHAR(255) NOT NULL
);
ALTER TABLE votes ADD COLUMN IF NOT EXISTS voted_at BIGINT NOT NULL DEFAULT 0;

-- Down Migration
ALTER TABLE votes DROP COLUMN IF EXISTS voted_at;
