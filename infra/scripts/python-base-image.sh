#!/usr/bin/env bash
# Prints the base image Python function images are built FROM. Users with a registry get the
# official Python image; where none can be reached, a stand-in made of this machine's own python3,
# the libraries it links and its standard library (no shell) is imported once and reused.
set -euo pipefail
. "$(dirname "$0")/rootfs.sh"

official="${PYTHON_BASE_IMAGE:-python:3.11-slim-bookworm}"
# The interpreter itself (python3 on the PATH may be a wrapper script, as pyenv's shims are).
python=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
version=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
standin="voting/python-base:$version"

existing_base "$official" "$standin" && exit 0
standin_needs_linux "$official"

echo "no registry answers for $official: importing a stand-in base image $standin" >&2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
stdlib=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
# The interpreter and its standard library at the paths it was built for (it finds the library
# from where it runs), without installed packages, the tests, the static library and the GUI
# toolkits; the extension modules' libraries too.
add_binaries "$root" "$python"
mkdir -p "$root$stdlib"
tar -C "$stdlib" --exclude=site-packages --exclude=dist-packages --exclude="config-*" --exclude=test --exclude=idlelib --exclude=tkinter --exclude=turtledemo --exclude=ensurepip --exclude=__pycache__ -c . | tar -C "$root$stdlib" -x
for module in "$root$stdlib"/lib-dynload/*.so; do
  [ -e "$module" ] && add_binaries "$root" "${module#"$root"}" 2>/dev/null || true
done
mkdir -p "$root/usr/local/bin" "$root/home/python"
ln -sf "$python" "$root/usr/local/bin/python3"
add_users "$root" python:1000
chown 1000:1000 "$root/home/python"
import_base "$root" "$standin" "stand-in for $official: the host's python $version"
echo "$standin"
