#!/bin/sh
# Entry point of the local PostgreSQL stand-in image: what the official image's entry point does
# for this app. On an empty data directory, initialise it with the password from
# POSTGRES_PASSWORD_FILE (a Docker secret), allow password logins over the network, then run.
set -e
PGDATA=${PGDATA:-/var/lib/postgresql/data}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -r "${POSTGRES_PASSWORD_FILE:-}" ] || { echo "POSTGRES_PASSWORD_FILE must name a readable file" >&2; exit 1; }
  initdb -D "$PGDATA" -U postgres --pwfile="$POSTGRES_PASSWORD_FILE" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
