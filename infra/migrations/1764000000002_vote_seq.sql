-- Up Migration
-- seq orders a voter's votes without clocks: the number the voter's cookie carried (see the
-- vote function). Rows written before it count as seq 0, below any vote cast since.
ALTER TABLE votes ADD COLUMN IF NOT EXISTS seq BIGINT NOT NULL DEFAULT 0;

-- Down Migration
ALTER TABLE votes DROP COLUMN IF EXISTS seq;
