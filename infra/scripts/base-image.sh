#!/usr/bin/env bash
# Prints the base image the function images are built FROM. Users with a registry get the
# official Node image; where none can be reached, a stand-in made of this machine's own node
# binary and the libraries it links (no shell, about 100 MB) is imported once and reused.
set -euo pipefail

official="${NODE_BASE_IMAGE:-node:20-bookworm-slim}"
standin="voting/node-base:$(node --version)"

if docker image inspect "$official" >/dev/null 2>&1; then echo "$official"; exit 0; fi
if timeout 20 docker pull -q "$official" >/dev/null 2>&1; then echo "$official"; exit 0; fi
if docker image inspect "$standin" >/dev/null 2>&1; then echo "$standin"; exit 0; fi

echo "no registry answers for $official: importing a stand-in base image $standin" >&2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
node_bin=$(readlink -f "$(command -v node)")
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/home/node"
chmod 1777 "$root/tmp"
cp "$node_bin" "$root/usr/local/bin/node"
# The shared libraries node links, at the same paths (ld-linux included).
ldd "$node_bin" | grep -o '/[^ ]*' | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
printf 'root:x:0:0:root:/root:/sbin/nologin\nnode:x:1000:1000:node:/home/node:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' >"$root/etc/group"
chown 1000:1000 "$root/home/node"
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change "LABEL org.opencontainers.image.description=\"stand-in for $official: the host's node $(node --version)\"" \
  - "$standin" >/dev/null
echo "$standin"
