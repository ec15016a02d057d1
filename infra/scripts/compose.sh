#!/usr/bin/env bash
# Runs Docker Compose with whichever is installed: the v2 plugin (`docker compose`) or Debian's
# docker-compose 1.29, installing the latter when neither is there (root, apt). Arguments are
# passed through, e.g. `infra/scripts/compose.sh -p voting up -d`.
set -euo pipefail
bash "$(dirname "$0")/ensure-docker.sh"
# The secret files docker-compose.yml makes Docker secrets of (generated once, then kept).
VOTING_SECRETS=$(bash "$(dirname "$0")/secrets.sh")
export VOTING_SECRETS
if docker compose version >/dev/null 2>&1; then exec docker compose "$@"; fi
if ! command -v docker-compose >/dev/null; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "✖ Neither 'docker compose' nor docker-compose is installed (Debian: apt-get install docker-compose)." >&2
    exit 1
  fi
  echo "installing Debian's docker-compose" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi
exec docker-compose "$@"
