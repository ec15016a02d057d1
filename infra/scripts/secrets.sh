#!/usr/bin/env bash
# Generates the app's secrets once, as files in VOTING_SECRETS (default .secrets/ at the
# repository's root), for docker-compose.yml to turn into Docker secrets: the database password,
# Redis's password, the voter cookie's key and the gateway's admin token (32 random bytes each,
# hex), and Redis's configuration file holding its password (redis-config, made again from
# redis-password whenever they differ). Existing files are kept, so a database initialised with a
# password keeps working. Prints the folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${VOTING_SECRETS:-$root/.secrets}
mkdir -p "$dir"
chmod 700 "$dir"
for name in postgres-password redis-password cookie-secret gateway-admin-token; do
  file=$dir/$name
  if [ ! -s "$file" ]; then
    umask 022
    # Readable inside the containers (their users differ); the folder keeps other host users out.
    od -An -vtx1 -N32 /dev/urandom | tr -d ' \n' >"$file.tmp"
    chmod 644 "$file.tmp"
    mv "$file.tmp" "$file"
  fi
done
# redis-server reads its password from a configuration file (the image may have no shell).
config="requirepass $(cat "$dir/redis-password")"
if [ "$(cat "$dir/redis-config" 2>/dev/null)" != "$config" ]; then
  umask 022
  printf '%s\n' "$config" >"$dir/redis-config.tmp"
  chmod 644 "$dir/redis-config.tmp"
  mv "$dir/redis-config.tmp" "$dir/redis-config"
fi
echo "$dir"
