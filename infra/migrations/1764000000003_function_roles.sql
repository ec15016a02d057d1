-- Up Migration
-- The functions' own database roles, each allowed only what its function needs, so that a
-- function never holds the owner's (often a superuser's) credentials: record-vote's upsert of
-- `votes`, results' read of it. Publishing events (pg_notify) needs no privilege. The gateway's
-- tables (the platform's, the SQL queue) get no grant at all.
--
-- Roles belong to the whole server, grants to one database: each database has roles of its own,
-- named after it. The process that migrates sets their passwords at every start (ALTER ROLE),
-- made once and kept here (packages/database/src/roles.ts); until then they cannot log in.
CREATE TABLE IF NOT EXISTS function_roles (
  -- What the role is for; a function reads the role's URL from the secret `<need>-url`.
  need TEXT PRIMARY KEY,
  role NAME NOT NULL UNIQUE,
  password TEXT
);

DO $$
DECLARE
  db TEXT := current_database();
  writer TEXT := db || '_votes_writer';
  reader TEXT := db || '_votes_reader';
  r TEXT;
BEGIN
  -- PostgreSQL would cut a longer name short, and two databases could then share a role.
  IF octet_length(writer) > 63 THEN
    RAISE EXCEPTION 'the database name "%" is too long for its functions'' role names (at most 50 bytes)', db;
  END IF;
  FOREACH r IN ARRAY ARRAY[writer, reader] LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS', r);
    END IF;
  END LOOP;
  INSERT INTO function_roles (need, role) VALUES ('votes-writer', writer), ('votes-reader', reader) ON CONFLICT (need) DO NOTHING;

  -- What every role gets by default: connecting and temporary tables here, objects in `public`.
  -- Only the functions' roles may connect; the owner needs no grant.
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', db);
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I, %I', db, writer, reader);
  REVOKE ALL ON SCHEMA public FROM PUBLIC;
  EXECUTE format('GRANT USAGE ON SCHEMA public TO %I, %I', writer, reader);

  -- record-vote's upsert (functions/record-vote/src/record.ts): it inserts every column, and its
  -- ON CONFLICT sets vote, seq and voted_at, reading the stored row and EXCLUDED (which needs SELECT).
  EXECUTE format('GRANT SELECT (id, vote, seq, voted_at), INSERT (id, vote, seq, voted_at), UPDATE (vote, seq, voted_at) ON votes TO %I', writer);
  -- results' tally: SELECT vote, COUNT(id) FROM votes GROUP BY vote.
  EXECUTE format('GRANT SELECT (id, vote) ON votes TO %I', reader);
END $$;

-- Down Migration
DO $$
DECLARE
  r NAME;
BEGIN
  FOR r IN SELECT role FROM function_roles LOOP
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('REVOKE ALL ON votes FROM %I', r);
      EXECUTE format('REVOKE ALL ON SCHEMA public FROM %I', r);
      EXECUTE format('REVOKE ALL ON DATABASE %I FROM %I', current_database(), r);
      EXECUTE format('DROP ROLE %I', r);
    END IF;
  END LOOP;
END $$;
GRANT USAGE ON SCHEMA public TO PUBLIC;
DO $$ BEGIN EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO PUBLIC', current_database()); END $$;
DROP TABLE IF EXISTS function_roles;
