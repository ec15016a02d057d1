#!/usr/bin/env bash
# Makes sure the tools the tests and benchmarks drive are on this machine: a redis-server binary
# (the tests start their own on a free port unless REDIS_URL is set), Chromium for Playwright,
# python3 (the Python function kit's contract tests) and ab (Apache's HTTP benchmark, the
# original app's seed load). Names given as arguments (e.g. `ab`) limit it to those. Idempotent:
# does nothing when they are present.
set -euo pipefail

wanted=("${@:-redis-server chromium python3 ab}")
wanted=(${wanted[*]})
has() { printf '%s\n' "${wanted[@]}" | grep -qx "$1"; }
missing=() packages=()
if has redis-server && [ -z "${REDIS_URL:-}" ] && ! command -v redis-server >/dev/null; then missing+=(redis-server) packages+=(redis-server); fi
if has chromium && [ -z "${CHROMIUM_PATH:-}" ] && ! [ -x /usr/bin/chromium ]; then missing+=(chromium) packages+=(chromium); fi
if has python3 && ! command -v python3 >/dev/null; then missing+=(python3) packages+=(python3); fi
if has ab && ! command -v ab >/dev/null; then missing+=(ab) packages+=(apache2-utils); fi
[ ${#missing[@]} -eq 0 ] && { echo "${wanted[*]} present"; exit 0; }

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "✖ missing: ${missing[*]}. Install them (Debian: apt-get install ${packages[*]})," >&2
  echo "  or set REDIS_URL to a running Redis and CHROMIUM_PATH to a Chromium binary." >&2
  exit 1
fi
echo "installing ${packages[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
