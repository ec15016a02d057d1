#!/usr/bin/env bash
# Brings a Docker Engine up on this machine when none answers: installs Debian's docker.io if
# dockerd is missing, starts dockerd in the background and waits for it. Idempotent: returns at
# once when `docker info` already works. Says plainly why when it cannot.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "✖ No Docker Engine answers and dockerd is not installed; installing it needs root and apt-get." >&2
    echo "  Install Docker Engine (Debian: apt-get install docker.io) and start it, then run again." >&2
    exit 1
  fi
  echo "installing Docker Engine (Debian's docker.io)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "✖ dockerd is installed but not running, and starting it needs root." >&2
  exit 1
fi
echo "starting dockerd"
mkdir -p /var/log
nohup dockerd >/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 150); do
  docker info >/dev/null 2>&1 && { echo "Docker Engine is up"; exit 0; }
  sleep 0.2
done
echo "✖ dockerd did not answer within 30 s; see /var/log/dockerd.log" >&2
exit 1
