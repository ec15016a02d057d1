# Sourced by the stand-in image scripts: copies host binaries, with every shared library they
# link, into a root filesystem folder that `docker import` turns into an image. This is how a
# machine that reaches no container registry gets base images made of its own packages.

# add_binaries ROOT FILE...: the files at the same paths, plus their libraries (ld-linux too).
add_binaries() {
  local root=$1
  shift
  local file lib
  for file in "$@"; do
    mkdir -p "$root$(dirname "$file")"
    cp -L "$file" "$root$file"
    ldd "$file" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
      [ -e "$root$lib" ] && continue
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
}

# add_users ROOT "name:uid" ...: /etc/passwd and /etc/group with root and the given users.
add_users() {
  local root=$1
  shift
  mkdir -p "$root/etc"
  printf 'root:x:0:0:root:/root:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  local entry name id
  for entry in "$@"; do
    name=${entry%%:*}
    id=${entry##*:}
    printf '%s:x:%s:%s:%s:/home/%s:/sbin/nologin\n' "$name" "$id" "$id" "$name" "$name" >>"$root/etc/passwd"
    printf '%s:x:%s:\n' "$name" "$id" >>"$root/etc/group"
  done
}

# pull_within SECONDS IMAGE: docker pull, given up after SECONDS (a registry that never answers).
# GNU's timeout where there is one; macOS has none, but has perl, whose alarm outlives its exec.
pull_within() {
  local seconds=$1 image=$2
  if command -v timeout >/dev/null 2>&1; then
    timeout "$seconds" docker pull -q "$image"
  else
    perl -e 'alarm shift; exec @ARGV or exit 127' "$seconds" docker pull -q "$image"
  fi
}

# standin_needs_linux OFFICIAL: stops (exit 1) on a machine other than Linux, saying what to do:
# a stand-in is made of this machine's own programs, which a Linux container runs only if they
# are Linux's (on macOS, Docker Desktop pulls the official images).
standin_needs_linux() {
  [ "$(uname -s)" = Linux ] && return 0
  echo "✖ no registry answers for $1, and a stand-in image can only be made on Linux: let Docker reach a registry (or docker load the image), then run again" >&2
  exit 1
}

# existing_base OFFICIAL STANDIN: prints the official image when it is here or can be pulled, else
# the stand-in when one was made before; returns 1 (printing nothing) when there is neither.
existing_base() {
  local official=$1 standin=$2
  if docker image inspect "$official" >/dev/null 2>&1; then echo "$official"; return 0; fi
  if pull_within 20 "$official" >/dev/null 2>&1; then echo "$official"; return 0; fi
  if docker image inspect "$standin" >/dev/null 2>&1; then echo "$standin"; return 0; fi
  return 1
}

# import_base ROOT STANDIN DESCRIPTION: imports the root filesystem as the image STANDIN, with the
# host's CA certificates, a world-writable /tmp and a PATH.
import_base() {
  local root=$1 standin=$2 description=$3
  mkdir -p "$root/etc/ssl/certs" "$root/tmp"
  chmod 1777 "$root/tmp"
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"; fi
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change "LABEL org.opencontainers.image.description=\"$description\"" \
    - "$standin" >/dev/null
}
