#!/usr/bin/env bash
# Makes sure the tools the tests drive are on this machine: a redis-server binary (the tests
# start their own on a free port unless REDIS_URL is set) and Chromium for Playwright.
# Idempotent: does nothing when both are present.
set -euo pipefail

missing=()
if [ -z "${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null; then missing+=(redis-server); fi
if [ -z "${CHROMIUM_PATH:-}" ] && ! [ -x /usr/bin/chromium ]; then missing+=(chromium); fi
[ ${#missing[@]} -eq 0 ] && { echo "redis-server and chromium present"; exit 0; }

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "✖ missing: ${missing[*]}. Install them (Debian: apt-get install ${missing[*]})," >&2
  echo "  or set REDIS_URL to a running Redis and CHROMIUM_PATH to a Chromium binary." >&2
  exit 1
fi
echo "installing ${missing[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
