#!/usr/bin/env bash
# Prints "POSTGRES_IMAGE=... REDIS_IMAGE=..." for docker compose. Where the official images can
# be pulled they are used; on a machine that reaches no registry, stand-ins are imported once
# from this machine's own PostgreSQL 15 and Redis packages (installed from Debian if missing).
set -euo pipefail
here=$(dirname "$0")
. "$here/rootfs.sh"

usable() { docker image inspect "$1" >/dev/null 2>&1 || pull_within 20 "$1" >/dev/null 2>&1; }

postgres_image() {
  local official=${POSTGRES_IMAGE:-postgres:16-alpine} standin=voting/postgres-standin:15
  if usable "$official"; then echo "$official"; return; fi
  if docker image inspect "$standin" >/dev/null 2>&1; then echo "$standin"; return; fi
  standin_needs_linux "$official"
  local bin=/usr/lib/postgresql/15/bin
  if [ ! -x "$bin/postgres" ]; then
    echo "installing PostgreSQL 15 from Debian's packages for a stand-in image" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
  fi
  echo "no registry answers for $official: importing a stand-in $standin" >&2
  local root
  root=$(mktemp -d)
  add_binaries "$root" /bin/sh "$bin/postgres" "$bin/initdb" "$bin/pg_isready" "$bin/pg_ctl"
  mkdir -p "$root/usr/share/postgresql" "$root/usr/local/bin" "$root/var/lib/postgresql/data" "$root/var/run/postgresql" "$root/tmp"
  cp -r /usr/share/postgresql/15 "$root/usr/share/postgresql/"
  ls /usr/lib/postgresql/15/lib/*.so >/dev/null 2>&1 && mkdir -p "$root/usr/lib/postgresql/15/lib" && cp /usr/lib/postgresql/15/lib/*.so "$root/usr/lib/postgresql/15/lib/"
  install -m 755 "$here/../docker/postgres-standin-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
  add_users "$root" postgres:999
  chown -R 999:999 "$root/var/lib/postgresql" "$root/var/run/postgresql"
  chmod 700 "$root/var/lib/postgresql/data"
  chmod 1777 "$root/tmp"
  tar -C "$root" -c . | docker import \
    --change "ENV PATH=$bin:/usr/local/bin:/bin PGDATA=/var/lib/postgresql/data" \
    --change 'USER postgres' \
    --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    --change 'LABEL org.opencontainers.image.description="stand-in for the official postgres image"' \
    - "$standin" >/dev/null
  rm -rf "$root"
  echo "$standin"
}

redis_image() {
  local official=${REDIS_IMAGE:-redis:7-alpine} standin=voting/redis-standin:7
  if usable "$official"; then echo "$official"; return; fi
  if docker image inspect "$standin" >/dev/null 2>&1; then echo "$standin"; return; fi
  standin_needs_linux "$official"
  if ! command -v redis-server >/dev/null; then
    echo "installing redis-server from Debian's packages for a stand-in image" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  fi
  echo "no registry answers for $official: importing a stand-in $standin" >&2
  local root
  root=$(mktemp -d)
  add_binaries "$root" "$(command -v redis-server)" "$(command -v redis-cli)"
  mkdir -p "$root/data" "$root/tmp"
  add_users "$root" redis:999
  chown 999:999 "$root/data"
  chmod 1777 "$root/tmp"
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/bin:/bin' \
    --change 'USER redis' \
    --change 'WORKDIR /data' \
    --change 'CMD ["redis-server"]' \
    --change 'LABEL org.opencontainers.image.description="stand-in for the official redis image"' \
    - "$standin" >/dev/null
  rm -rf "$root"
  echo "$standin"
}

echo "POSTGRES_IMAGE=$(postgres_image) REDIS_IMAGE=$(redis_image)"
