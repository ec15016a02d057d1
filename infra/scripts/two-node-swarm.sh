#!/usr/bin/env bash
# A two-node Swarm on one machine, to see functions spread over nodes: two more Docker Engines,
# each in its own network namespace (vnode1, vnode2) joined by a host bridge (10.231.0.0/24).
# vnode1 is the manager, vnode2 a worker; the app's images are copied into both (the image IDs
# stay the same, which is what the function services name). Needs root, `ip` and `nsenter`.
#
#   infra/scripts/two-node-swarm.sh up      # start both engines, make the Swarm, load the images
#   eval "$(infra/scripts/two-node-swarm.sh env)" && npm run stack:deploy   # deploy onto it
#   infra/scripts/two-node-swarm.sh cut     # a network partition: the nodes stop hearing each other
#   infra/scripts/two-node-swarm.sh heal    # and hear each other again
#   infra/scripts/two-node-swarm.sh down    # remove the stack, the engines, their data, the bridge
#
# The machine's own Docker Engine is left alone, except one forwarding rule for the bridge.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
net=10.231.0
bridge=vbr0
nodes=(1 2)
sock() { echo "/run/vnode$1.sock"; }
d() { local n=$1; shift; docker -H "unix://$(sock "$n")" "$@"; }
say() { echo "› $*"; }

up() {
  [ "$(id -u)" = 0 ] || { echo "✖ needs root (network namespaces, a second dockerd)" >&2; exit 1; }
  bash "$here/ensure-docker.sh" >/dev/null
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    ip addr add "$net.1/24" dev "$bridge"
    ip link set "$bridge" up
  fi
  # Docker's FORWARD policy drops bridged traffic it does not know about.
  iptables -C FORWARD -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null || iptables -I FORWARD -i "$bridge" -o "$bridge" -j ACCEPT
  for n in "${nodes[@]}"; do
    if ! ip netns list | grep -qw "vnode$n"; then
      ip netns add "vnode$n"
      ip link add "vh$n" type veth peer name "vp$n"
      ip link set "vp$n" netns "vnode$n"
      ip netns exec "vnode$n" ip link set "vp$n" name eth0
      ip link set "vh$n" master "$bridge"
      ip link set "vh$n" up
      ip netns exec "vnode$n" ip addr add "$net.1$n/24" dev eth0
      ip netns exec "vnode$n" ip link set eth0 up
      ip netns exec "vnode$n" ip link set lo up
      ip netns exec "vnode$n" ip route add default via "$net.1"
    fi
    if ! d "$n" info >/dev/null 2>&1; then
      say "starting the Docker Engine of vnode$n"
      mkdir -p "/var/lib/vnode$n" "/run/vnode$n"
      # Only the network namespace is its own (`ip netns exec` would hide the cgroup mounts).
      nohup nsenter --net="/var/run/netns/vnode$n" dockerd --data-root "/var/lib/vnode$n" --exec-root "/run/vnode$n" \
        --pidfile "/run/vnode$n/dockerd.pid" -H "unix://$(sock "$n")" >"/var/log/vnode$n.log" 2>&1 &
      for _ in $(seq 1 100); do d "$n" info >/dev/null 2>&1 && break; sleep 0.2; done
      d "$n" info >/dev/null || { echo "✖ the engine of vnode$n did not start; see /var/log/vnode$n.log" >&2; exit 1; }
    fi
  done
  if [ "$(d 1 info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
    # A node that misses its heartbeats is declared down and its tasks replaced when it returns
    # (PostgreSQL and Redis restarted with them). Every 15 s instead of 5: a cut shorter than that
    # (`cut`, then `heal`) leaves Swarm's tasks where they are, and shows the tier's own recovery.
    say "vnode1: docker swarm init --advertise-addr $net.11 --dispatcher-heartbeat 15s"
    d 1 swarm init --advertise-addr "$net.11" --dispatcher-heartbeat 15s >/dev/null
  fi
  if [ "$(d 2 info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
    say "vnode2: docker swarm join (worker)"
    d 2 swarm join --token "$(d 1 swarm join-token -q worker)" "$net.11:2377" >/dev/null
  fi
  say "copying the images into both engines (docker save | docker load)"
  local images
  images=$(bash "$here/standin-images.sh" | tr ' ' '\n' | cut -d= -f2)
  images="$images voting/gateway:latest $(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^voting/fn-' | tr '\n' ' ')"
  local tar
  tar=$(mktemp)
  # shellcheck disable=SC2086
  docker save $images >"$tar"
  for n in "${nodes[@]}"; do d "$n" load -q <"$tar" >/dev/null; done
  rm -f "$tar"
  d 1 node ls
  echo
  echo "Deploy onto it:  eval \"\$($0 env)\" && npm run stack:deploy"
}

# Each node drops every packet from and to the other (this machine still reaches both): Swarm's
# gossip, the overlay network and every connection between the nodes' containers stop.
rules() {
  local action=$1
  for pair in "1 2" "2 1"; do
    set -- $pair
    ip netns exec "vnode$1" iptables "$action" INPUT -s "$net.1$2" -j DROP
    ip netns exec "vnode$1" iptables "$action" OUTPUT -d "$net.1$2" -j DROP
  done
}
cut_link() {
  ip netns exec vnode1 iptables -C INPUT -s "$net.12" -j DROP 2>/dev/null && { say "already cut"; return 0; }
  rules -I
  say "vnode1 and vnode2 cut from each other"
}
heal_link() {
  while ip netns exec vnode1 iptables -C INPUT -s "$net.12" -j DROP 2>/dev/null; do rules -D; done
  say "vnode1 and vnode2 joined again"
}

env_() {
  echo "export DOCKER_HOST=unix://$(sock 1) DOCKER_SOCKET=$(sock 1) PUBLIC_HOST=$net.11 NO_BUILD=1"
}

down() {
  if d 1 info >/dev/null 2>&1; then
    DOCKER_HOST="unix://$(sock 1)" bash "$here/stack.sh" rm "${STACK_NAME:-voting}" --volumes || true
  fi
  for n in "${nodes[@]}"; do
    if [ -s "/run/vnode$n/dockerd.pid" ]; then
      local pid
      pid=$(cat "/run/vnode$n/dockerd.pid")
      say "stopping the Docker Engine of vnode$n (pid $pid)"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    ip netns list | grep -qw "vnode$n" && ip netns del "vnode$n"
    ip link del "vh$n" 2>/dev/null || true
    # What the engine left mounted (its overlay networks' namespaces, under its exec root) keeps
    # rm from removing it: unmounted first, deepest first.
    awk -v a="/run/vnode$n/" -v b="/var/lib/vnode$n/" 'index($2, a) == 1 || index($2, b) == 1 { print $2 }' /proc/mounts |
      sort -r | while read -r mount; do umount -l "$mount" 2>/dev/null || true; done
    rm -rf "/var/lib/vnode$n" "/run/vnode$n" "$(sock "$n")"
  done
  iptables -D FORWARD -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null || true
  ip link del "$bridge" 2>/dev/null || true
  say "two-node Swarm removed"
}

case ${1:-} in
  up) up ;;
  env) env_ ;;
  down) down ;;
  cut) cut_link ;;
  heal) heal_link ;;
  *) echo "usage: two-node-swarm.sh up|env|cut|heal|down" >&2; exit 2 ;;
esac
