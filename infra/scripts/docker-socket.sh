# Sourced by compose.sh and stack.sh: the group a container joins to use the Docker Engine's
# socket, on a Linux machine (GNU tools) as on macOS (BSD tools, Docker Desktop).

# file_gid FILE: the numeric group of FILE (through symbolic links), with GNU's stat or BSD's.
file_gid() {
  if stat --version >/dev/null 2>&1; then
    stat -L -c %g "$1"
  else
    stat -L -f %g "$1"
  fi
}

# docker_socket_gid SOCKET: DOCKER_GID when set; else the group of the engine's socket SOCKET as
# the containers that mount it see it. Docker Desktop runs the engine in a VM where that socket
# is root's (group 0), whatever the file on this machine says. An engine of this Linux machine:
# the socket file's group. Another VM (Colima, a remote engine seen from macOS): said, not guessed.
docker_socket_gid() {
  local socket=$1
  if [ -n "${DOCKER_GID:-}" ]; then
    echo "$DOCKER_GID"
    return 0
  fi
  case "$(docker info --format '{{.OperatingSystem}}' 2>/dev/null)" in
    'Docker Desktop'*)
      echo 0
      return 0
      ;;
  esac
  if [ "$(uname -s)" != Linux ]; then
    echo "✖ the Docker Engine runs in a VM, not on this $(uname -s) machine: set DOCKER_GID to the group of /var/run/docker.sock inside it" >&2
    return 1
  fi
  if [ ! -e "$socket" ]; then
    echo "✖ no Docker socket at $socket: set DOCKER_SOCKET to the engine's socket, or DOCKER_GID to its group" >&2
    return 1
  fi
  file_gid "$socket"
}
