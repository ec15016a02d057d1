#!/usr/bin/env bash
# Prints the base image the function and gateway images are built FROM. Users with a registry
# get the official Node image; where none can be reached, a stand-in made of this machine's own
# node binary and the libraries it links (no shell, about 100 MB) is imported once and reused.
set -euo pipefail
. "$(dirname "$0")/rootfs.sh"

official="${NODE_BASE_IMAGE:-node:20-bookworm-slim}"
standin="voting/node-base:$(node --version)"

existing_base "$official" "$standin" && exit 0
standin_needs_linux "$official"

echo "no registry answers for $official: importing a stand-in base image $standin" >&2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
node_bin=$(readlink -f "$(command -v node)")
add_binaries "$root" "$node_bin"
mkdir -p "$root/usr/local/bin" "$root/home/node"
mv "$root$node_bin" "$root/usr/local/bin/node"
add_users "$root" node:1000
chown 1000:1000 "$root/home/node"
import_base "$root" "$standin" "stand-in for $official: the host's node $(node --version)"
echo "$standin"
