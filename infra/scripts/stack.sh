#!/usr/bin/env bash
# `npm run stack:deploy` / `npm run stack:rm`: the app as a Swarm stack from docker-compose.yml.
#
#   stack.sh deploy [NAME]          init a single-node Swarm if none, build the images, make the
#                                   secrets, deploy, wait until healthy, print the URLs
#   stack.sh rm [NAME] [--volumes]  remove the stack (and the function services its controller
#                                   started), wait until all is gone; --volumes drops the data too
#
# Data left by an earlier stack that the secret files do not open (new files next to an old
# database volume) stops the deploy at once with a line saying what to do.
#
# NAME defaults to $STACK_NAME or "voting". Settings: VOTE_PORT, RESULT_PORT (8080, 8081),
# POSTGRES_IMAGE, REDIS_IMAGE, GATEWAY_IMAGE, VOTING_SECRETS, ADVERTISE_ADDR (127.0.0.1),
# NO_BUILD=1 (skip `npm run images`), WAIT_SECONDS (180), EXTRA_COMPOSE_FILE (merged over the file),
# DOCKER_SOCKET (the manager engine's socket the controller mounts, /var/run/docker.sock, Docker
# Desktop's too), DOCKER_GID (that socket's group; found when unset, 0 on Docker Desktop),
# PUBLIC_HOST (where the edges' ports are reached, 127.0.0.1), GATEWAY_REPLICAS (edges, one per node: 2, or 1 on a single node),
# CONTROLLER_REPLICAS (2: one leads, one stands by), EDGE_SERVICE (the edges' service the leader
# scales by load, ${stack}_gateway; empty: fixed at GATEWAY_REPLICAS). DOCKER_HOST selects another engine, as for any docker command. Both commands can be run again safely.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

usage() {
  cat <<'EOF'
usage: npm run stack:deploy -- [NAME]
       npm run stack:rm -- [NAME] [--volumes]
  deploy  deploys the app as a Swarm stack (a single-node Swarm made if there is none), waits
          until it is healthy and prints its URLs
  rm      removes the stack and the function services it started; --volumes drops its data too
  NAME    the stack's name (default: $STACK_NAME, else voting)
  Settings (environment) are listed at the top of infra/scripts/stack.sh.
EOF
}
# Bad arguments: what is wrong, then the usage, and exit status 2.
refuse() {
  echo "✖ $1" >&2
  usage >&2
  exit 2
}
command=${1:-}
shift || true
case $command in
  deploy | rm) ;;
  -h | --help | help) usage; exit 0 ;;
  '') refuse "no command given: deploy or rm" ;;
  *) refuse "unknown command $command" ;;
esac
stack=${STACK_NAME:-voting}
volumes=0
named=
for arg in "$@"; do
  case $arg in
    -h | --help) usage; exit 0 ;;
    --volumes) [ "$command" = rm ] || refuse "--volumes is an option of rm"; volumes=1 ;;
    -*) refuse "unknown option $arg" ;;
    *) [ -z "$named" ] || refuse "unexpected argument $arg (the stack is already named $stack)"; stack=$arg named=1 ;;
  esac
done
[[ $stack =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || { echo "✖ stack name must be lower-case letters, digits and dashes: $stack" >&2; exit 2; }
say() { echo "› $*"; }
# Progress while waiting: on a terminal one line rewritten in place every couple of seconds,
# elsewhere (a log) a line when it changes or every 15 s. progress_end ends it.
progress_since=0 progress_shown= progress_at=0
progress() {
  local line="  $1 ($((SECONDS - progress_since)) s)"
  if [ -t 1 ]; then
    [ $SECONDS -ge $progress_at ] || [ "$1" != "$progress_shown" ] || return 0
    printf '\r\033[K%s' "$line"
    progress_at=$((SECONDS + 2))
  elif [ "$1" != "$progress_shown" ] || [ $SECONDS -ge $progress_at ]; then
    echo "$line"
    progress_at=$((SECONDS + 15))
  fi
  progress_shown=$1
}
# "1 service", "3 services": the word, then the things counted.
counted() {
  local word=$1
  shift
  [ $# = 1 ] && echo "1 $word" || echo "$# ${word}s"
}
progress_end() {
  [ -t 1 ] && [ -n "$progress_shown" ] && echo
  progress_shown=
  return 0
}
owned() { echo "label=com.docker.stack.namespace=$stack"; }
source "$here/data-check.sh"
source "$here/docker-socket.sh"
# docker-compose.yml's volume db-data as Swarm names it for this stack (`rm` keeps it), its
# owner's label, and what removes it.
db_data=("${stack}_db-data" "com.docker.stack.namespace=$stack" "npm run stack:rm -- $stack --volumes")

# Waits until nothing of the stack (services, containers, networks) and none of its function
# services remain.
wait_gone() {
  local deadline=$((SECONDS + ${WAIT_SECONDS:-180}))
  progress_since=$SECONDS
  while :; do
    local services containers networks
    services=$(docker service ls -q --filter "$(owned)"; docker service ls -q --filter "label=serverless-platform.swarm.owner=$stack-fn")
    containers=$(docker ps -aq --filter "$(owned)"; docker ps -aq --filter "label=serverless-platform.swarm.owner=$stack-fn")
    networks=$(docker network ls -q --filter "$(owned)")
    local left="$services$containers$networks"
    [ -z "$left" ] && { progress_end; return 0; }
    if [ $SECONDS -ge $deadline ]; then
      progress_end
      echo "✖ still there after ${WAIT_SECONDS:-180} s: $(echo $left)" >&2
      return 1
    fi
    progress "waiting for the stack to go: $(counted service $services), $(counted container $containers), $(counted network $networks) left"
    sleep 0.5
  done
}

remove() {
  bash "$here/ensure-docker.sh"
  if [ "$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)" != active ]; then
    say "no Swarm here: nothing to remove"
    return 0
  fi
  local controller="${stack}_controller"
  if docker service inspect "$controller" >/dev/null 2>&1; then
    # The controller first, so that it scales nothing up again while the function services go.
    say "stopping the controller of $stack"
    docker service rm "$controller" >/dev/null
    for _ in $(seq 1 120); do
      [ -z "$(docker ps -aq --filter "label=com.docker.swarm.service.name=$controller")" ] && break
      sleep 0.25
    done
  fi
  # If it could not (killed), its function services carry its label and go here. Only this
  # stack's own: the label names it.
  for id in $(docker service ls -q --filter "label=serverless-platform.swarm.owner=$stack-fn"); do
    docker service rm "$id" >/dev/null 2>&1 || true
  done
  # Swarm keeps the containers of finished job tasks (one-shot calls) after their service is gone.
  for _ in $(seq 1 40); do
    [ -z "$(docker service ls -q --filter "label=serverless-platform.swarm.owner=$stack-fn")" ] && break
    sleep 0.25
  done
  for id in $(docker ps -aq --filter "label=serverless-platform.swarm.owner=$stack-fn" --filter status=exited --filter status=created --filter status=dead); do
    docker rm -f "$id" >/dev/null 2>&1 || true
  done
  if [ -n "$(docker service ls -q --filter "$(owned)")$(docker network ls -q --filter "$(owned)")" ]; then
    say "removing stack $stack"
    # A network is refused while a task still uses it: try again until the tasks are gone.
    for attempt in $(seq 1 60); do
      docker stack rm "$stack" >/dev/null 2>&1 && break
      [ "$attempt" = 60 ] && { docker stack rm "$stack"; exit 1; }
      sleep 0.5
    done
  else
    say "stack $stack is not deployed"
  fi
  wait_gone
  for id in $(docker secret ls -q --filter "label=serverless-platform.swarm.owner=$stack-fn"); do
    docker secret rm "$id" >/dev/null 2>&1 || true
  done
  if [ $volumes = 1 ]; then
    local vols
    vols=$(docker volume ls -q --filter "$(owned)")
    if [ -n "$vols" ]; then
      say "removing volumes: $(echo $vols)"
      # A volume is freed a moment after its container is removed.
      for _ in $(seq 1 40); do docker volume rm $vols >/dev/null 2>&1 && break; sleep 0.25; done
      [ -z "$(docker volume ls -q --filter "$(owned)")" ] || { echo "✖ volumes left: $(docker volume ls -q --filter "$(owned)")" >&2; exit 1; }
    fi
  fi
  say "stack $stack is gone"
}

deploy() {
  bash "$here/ensure-docker.sh"
  # Data of an earlier stack, and no secret files yet: new ones would not open it.
  check_stale_data "${db_data[@]}"
  case "$(docker info --format '{{.Swarm.LocalNodeState}}')" in
    active) ;;
    inactive)
      say "no Swarm yet: initialising a single-node Swarm (advertised on ${ADVERTISE_ADDR:-127.0.0.1})"
      docker swarm init --advertise-addr "${ADVERTISE_ADDR:-127.0.0.1}" >/dev/null ;;
    *) echo "✖ this Docker Engine's Swarm is $(docker info --format '{{.Swarm.LocalNodeState}}'); fix it (docker swarm leave/join) and run again" >&2; exit 1 ;;
  esac
  [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" = true ] || { echo "✖ this node is a Swarm worker: deploy from a manager" >&2; exit 1; }

  # A stack being removed under the same name still holds its ports and networks.
  if [ -z "$(docker service ls -q --filter "$(owned)")" ] && [ -n "$(docker network ls -q --filter "$(owned)")$(docker ps -aq --filter "$(owned)")" ]; then
    say "waiting for the earlier stack $stack to be gone"
    wait_gone
  fi
  if [ "${NO_BUILD:-0}" != 1 ]; then
    say "building the images"
    node "$here/build-images.mjs" >/dev/null
  fi
  local images
  images=$(bash "$here/standin-images.sh")
  export $images
  VOTING_SECRETS=$(bash "$here/secrets.sh")
  export VOTING_SECRETS STACK_NAME=$stack RUNTIME=swarm
  export DOCKER_SOCKET=${DOCKER_SOCKET:-/var/run/docker.sock}
  DOCKER_GID=$(docker_socket_gid "$DOCKER_SOCKET") || exit 1
  export DOCKER_GID
  export VOTE_PORT=${VOTE_PORT:-8080} RESULT_PORT=${RESULT_PORT:-8081}
  # What the pages show a room to scan: where the vote page is reached from outside.
  export PUBLIC_URL=${PUBLIC_URL:-http://${PUBLIC_HOST:-127.0.0.1}:$VOTE_PORT/}
  # Edges publish their ports on their node (host mode): one per node, two where there are two nodes.
  local nodes
  nodes=$(docker node ls -q --filter role=manager | wc -l)
  nodes=$((nodes + $(docker node ls -q --filter role=worker | wc -l)))
  export GATEWAY_REPLICAS=${GATEWAY_REPLICAS:-$((nodes < 2 ? 1 : 2))} CONTROLLER_REPLICAS=${CONTROLLER_REPLICAS:-2}
  # The leading controller scales the edges by their load (EDGE_REPLICAS_MIN..EDGE_REPLICAS_MAX).
  export EDGE_SERVICE=${EDGE_SERVICE-${stack}_gateway}
  say "deploying stack $stack ($images)"
  # Images are local (or pinned by the settings): no registry lookup for their digests.
  local files=(-c docker-compose.yml)
  [ -n "${EXTRA_COMPOSE_FILE:-}" ] && files+=(-c "$EXTRA_COMPOSE_FILE")
  local since
  since=$(date +%s)
  docker stack deploy --resolve-image never --prune "${files[@]}" "$stack" 2>&1 | grep -v -e '^Since --detach' -e '^In a future release' | sed 's/^/  /'

  local host=${PUBLIC_HOST:-127.0.0.1}
  local url="http://$host:$VOTE_PORT" deadline=$((SECONDS + ${WAIT_SECONDS:-180}))
  say "waiting until it is healthy"
  progress_since=$SECONDS
  # Every service at its replicas, none in the middle of a rolling update (a redeploy), and the
  # gateway answering.
  local total running pending
  while :; do
    total=0 running=0 pending=
    local updating
    updating=" $(docker service inspect --format '{{.Spec.Name}}{{if .UpdateStatus}}:{{.UpdateStatus.State}}{{end}}' $(docker service ls -q --filter "$(owned)") 2>/dev/null | tr '\n' ' ') "
    while read -r name replicas _; do
      [ -n "$name" ] || continue
      total=$((total + 1))
      if [ "${replicas%%/*}" = "${replicas#*/}" ] && [[ $updating != *" $name:updating "* ]]; then
        running=$((running + 1))
      else
        pending="$pending $name"
      fi
    done < <(docker service ls --filter "$(owned)" --format '{{.Name}} {{.Replicas}}' | sed 's/ (.*)$//')
    if [ $total -gt 0 ] && [ -z "$pending" ]; then
      curl -fsS -o /dev/null "$url/healthz" 2>/dev/null && break
      progress "waiting for the stack: all $total services running, the gateway not answering at $url/healthz yet"
    else
      progress "waiting for the stack: $running/$total services running"
    fi
    # Secret files other than those the data was made with: the gateway stops at start-up saying
    # so, and restarting it cannot help. The stack goes (its Docker secrets cannot be changed in
    # place), the data stays. grep reads all the logs: under pipefail, -q could fail the pipe.
    if { docker service logs --raw --since "$since" "${stack}_controller" 2>/dev/null; docker service logs --raw --since "$since" "${stack}_gateway" 2>/dev/null; } | grep -F 'rejected the password' >/dev/null; then
      say "the gateway cannot log in to PostgreSQL: removing stack $stack again (its volumes stay)"
      volumes=0
      remove
      stale_data_line "${db_data[@]}" >&2
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      progress_end
      if [ -n "$pending" ]; then
        echo "✖ stack $stack not healthy after ${WAIT_SECONDS:-180} s (WAIT_SECONDS): not running:$pending" >&2
        for name in $pending; do echo "  see why: docker service ps $name --no-trunc" >&2; done
      else
        echo "✖ stack $stack not healthy after ${WAIT_SECONDS:-180} s (WAIT_SECONDS): the gateway does not answer at $url/healthz" >&2
        echo "  see why: docker service logs ${stack}_gateway" >&2
      fi
      docker stack ps --no-trunc "$stack" --format '  {{.Name}} {{.CurrentState}} {{.Error}}' | head -20 >&2
      exit 1
    fi
    sleep 1
  done
  progress_end
  docker service ls --filter "$(owned)" --format '  {{.Name}} {{.Replicas}}'
  cat <<EOF

  Vote:      http://$host:$VOTE_PORT/
  Result:    http://$host:$RESULT_PORT/
  Dashboard: http://$host:$VOTE_PORT/system/ui/   (admin token: $VOTING_SECRETS/gateway-admin-token)
  Functions: docker service ls --filter label=serverless-platform.swarm.owner=$stack-fn
  Remove:    npm run stack:rm -- $stack   (add --volumes to drop its data too)

EOF
}

case $command in
  deploy) deploy ;;
  rm) remove ;;
esac
