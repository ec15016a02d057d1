#!/usr/bin/env bash
# Prints the base image the function and gateway images are built FROM. Users with a registry
# get the official Node image; where none can be reached, a stand-in made of this machine's own
# node binary and the libraries it links (no shell, about 100 MB) is imported once and reused.
set -euo pipefail
. "$(dirname "$0")/rootfs.sh"

official="${NODE_BASE_IMAGE:-node:20-bookworm-slim}"
standin="voting/node-base:$(node --version)"

if docker image inspect "$official" >/dev/null 2>&1; then echo "$official"; exit 0; fi
if timeout 20 docker pull -q "$official" >/dev/null 2>&1; then echo "$official"; exit 0; fi
if docker image inspect "$standin" >/dev/null 2>&1; then echo "$standin"; exit 0; fi

echo "no registry answers for $official: importing a stand-in base image $standin" >&2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
node_bin=$(readlink -f "$(command -v node)")
add_binaries "$root" "$node_bin"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/home/node"
mv "$root$node_bin" "$root/usr/local/bin/node"
chmod 1777 "$root/tmp"
add_users "$root" node:1000
chown 1000:1000 "$root/home/node"
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change "LABEL org.opencontainers.image.description=\"stand-in for $official: the host's node $(node --version)\"" \
  - "$standin" >/dev/null
echo "$standin"
