#!/usr/bin/env bash
# Generates the app's secrets once, as files in VOTING_SECRETS (default .secrets/ at the
# repository's root), for docker-compose.yml to turn into Docker secrets: the database password,
# the voter cookie's key and the gateway's admin token (32 random bytes each, hex). Existing
# files are kept, so a database initialised with a password keeps working. Prints the folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${VOTING_SECRETS:-$root/.secrets}
mkdir -p "$dir"
chmod 700 "$dir"
for name in postgres-password cookie-secret gateway-admin-token; do
  file=$dir/$name
  if [ ! -s "$file" ]; then
    umask 022
    # Readable inside the containers (their users differ); the folder keeps other host users out.
    od -An -vtx1 -N32 /dev/urandom | tr -d ' \n' >"$file.tmp"
    chmod 644 "$file.tmp"
    mv "$file.tmp" "$file"
  fi
done
echo "$dir"
