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
