#!/usr/bin/env bash
# Runs Docker Compose with whichever is installed: the v2 plugin (`docker compose`) or Debian's
# docker-compose 1.29, installing the latter when neither is there (root, apt). Arguments are
# passed through, e.g. `infra/scripts/compose.sh -p voting up -d`.
set -euo pipefail
bash "$(dirname "$0")/ensure-docker.sh"
source "$(dirname "$0")/data-check.sh"

# The project's name as Compose makes it (-p, COMPOSE_PROJECT_NAME, else the name of the project
# folder: --project-directory, the first -f file's folder, or the nearest one above with a
# compose file; lower-case letters, digits, - and _ kept), and the command after the options.
project=${COMPOSE_PROJECT_NAME:-} directory= file= command=
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  arg=${args[i]} next=${args[i + 1]:-}
  case $arg in
    -p | --project-name) project=$next; i=$((i + 1)) ;;
    --project-name=*) project=${arg#*=} ;;
    -p?*) project=${arg#-p} ;;
    -f | --file) file=${file:-$next}; i=$((i + 1)) ;;
    --file=*) file=${file:-${arg#*=}} ;;
    --project-directory) directory=$next; i=$((i + 1)) ;;
    --project-directory=*) directory=${arg#*=} ;;
    --env-file | --profile | --ansi | --progress | --parallel | -c | --context | -H | --host | --log-level | --tlscacert | --tlscert | --tlskey) i=$((i + 1)) ;;
    -*) ;;
    *) command=$arg; break ;;
  esac
done
if [ -z "$project" ]; then
  if [ -n "$directory" ]; then folder=$directory
  elif [ -n "$file" ]; then folder=$(dirname "$file")
  else
    folder=$PWD
    until [ -e "$folder/docker-compose.yml" ] || [ -e "$folder/docker-compose.yaml" ] || [ -e "$folder/compose.yaml" ] || [ -e "$folder/compose.yml" ] || [ "$folder" = / ]; do
      folder=$(dirname "$folder")
    done
  fi
  project=$(basename "$(cd "$folder" 2>/dev/null && pwd || echo "$folder")")
fi
project=$(printf %s "$project" | tr '[:upper:]' '[:lower:]' | tr -cd 'a-z0-9_-')
# Commands that start the database: not with data it cannot open (docker-compose.yml's db-data).
case $command in
  up | create | run | start | restart)
    check_stale_data "${project}_db-data" "com.docker.compose.project=$project" "$0 -p $project down -v"
    # The app's images, built when missing (as `npm run images` does); PostgreSQL and Redis from
    # a registry, or local stand-ins where none answers.
    if [ -z "${GATEWAY_IMAGE:-}" ] && ! docker image inspect voting/gateway:latest voting/fn-vote:latest >/dev/null 2>&1; then
      echo "› the app's images are not built yet: building them (npm run images)" >&2
      node "$(dirname "$0")/bootstrap.mjs" images >&2
    fi
    images=$(bash "$(dirname "$0")/standin-images.sh")
    [[ $images == POSTGRES_IMAGE=?*' 'REDIS_IMAGE=?* ]] || { echo "✖ could not pick the PostgreSQL and Redis images (above)" >&2; exit 1; }
    export $images ;;
esac
# The secret files docker-compose.yml makes Docker secrets of (generated once, then kept).
VOTING_SECRETS=$(bash "$(dirname "$0")/secrets.sh")
export VOTING_SECRETS
# The gateway runs as user 1000 and drives the Docker Engine: it joins the socket's group.
source "$(dirname "$0")/docker-socket.sh"
DOCKER_GID=$(docker_socket_gid "${DOCKER_SOCKET:-/var/run/docker.sock}") || exit 1
export DOCKER_GID
# What the pages show a room to scan: the vote port on this machine (PUBLIC_URL sets another).
export PUBLIC_URL=${PUBLIC_URL:-http://localhost:${VOTE_PORT:-8080}/}
if docker compose version >/dev/null 2>&1; then exec docker compose "$@"; fi
if ! command -v docker-compose >/dev/null; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "✖ Neither 'docker compose' nor docker-compose is installed (Debian: apt-get install docker-compose)." >&2
    exit 1
  fi
  echo "installing Debian's docker-compose" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi
exec docker-compose "$@"
