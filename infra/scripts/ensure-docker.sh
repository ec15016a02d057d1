#!/usr/bin/env bash
# Brings a Docker Engine up on this machine when none answers: installs Debian's docker.io if
# dockerd is missing, starts dockerd in the background and waits for it. Idempotent: returns at
# once when `docker info` already works. Says plainly why when it cannot.
set -euo pipefail

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  exit 0
fi
# Where the docker CLI looks, as a path when it is a unix socket.
engine=${DOCKER_HOST:-unix:///var/run/docker.sock}
engine=${engine#unix://}
# One line saying what to do, where this script cannot do it itself.
unanswered() {
  echo "✖ no Docker Engine answers at $engine: $1" >&2
  exit 1
}
install_it="install Docker (Docker Desktop on macOS) and start it, or set DOCKER_HOST"
if [ -S "$engine" ] && [ ! -w "$engine" ]; then
  unanswered "this user may not use its socket: add it to the socket's group (sudo usermod -aG $(stat -c %G "$engine" 2>/dev/null || stat -f %Sg "$engine") $(id -un)), then log in again"
fi
# Another engine named (DOCKER_HOST), or not Linux: starting one here would not help.
[ -z "${DOCKER_HOST:-}" ] && [ "$(uname -s)" = Linux ] || unanswered "$install_it"
if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
  [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null || unanswered "$install_it"
  echo "installing Docker Engine (Debian's docker.io)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi
[ "$(id -u)" -eq 0 ] || unanswered "start it (sudo systemctl start docker), or set DOCKER_HOST"
echo "starting dockerd"
mkdir -p /var/log
nohup dockerd >/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 150); do
  docker info >/dev/null 2>&1 && { echo "Docker Engine is up"; exit 0; }
  sleep 0.2
done
echo "✖ dockerd did not answer within 30 s; see /var/log/dockerd.log" >&2
exit 1
