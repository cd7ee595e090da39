#!/usr/bin/env bash
# A RabbitMQ cluster on this machine, without Docker: N nodes of Debian's rabbitmq-server, each
# with its own node name (tracehop-N@localhost), AMQP port, distribution port and data directory,
# sharing one Erlang cookie, joined with `rabbitmqctl join_cluster`. Installs rabbitmq-server with
# apt-get when it is missing. Idempotent: a node that runs is left alone.
#
#   scripts/rabbitmq-cluster.sh start [N]   # N nodes (default 3); prints the AMQP_URL to use
#   scripts/rabbitmq-cluster.sh status      # the cluster and its queues (type, leader, members)
#   scripts/rabbitmq-cluster.sh stop-node I # stops node I (1..N), as a failing machine would
#   scripts/rabbitmq-cluster.sh start-node I
#   scripts/rabbitmq-cluster.sh stop        # stops every node and removes their data
#
# Then, for example:
#   AMQP_QUEUE_TYPE=quorum AMQP_URL=$(scripts/rabbitmq-cluster.sh url) tracehop up
#
# Environment: CLUSTER_DIR (default ${XDG_RUNTIME_DIR:-/tmp}/tracehop-rabbitmq-cluster),
# CLUSTER_PORT (first AMQP port, default 5681; node I listens on CLUSTER_PORT+I-1 and
# distributes on 20000 more).
set -euo pipefail

DIR=${CLUSTER_DIR:-${XDG_RUNTIME_DIR:-/tmp}/tracehop-rabbitmq-cluster}
BASE_PORT=${CLUSTER_PORT:-5681}
# The scripts that run as the calling user; /usr/sbin's wrappers switch to the rabbitmq user.
BIN=/usr/lib/rabbitmq/bin

die() { echo "rabbitmq-cluster: $*" >&2; exit 1; }

install_server() {
  [ -x "$BIN/rabbitmq-server" ] && return
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "rabbitmq-cluster: installing rabbitmq-server (apt-get)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq rabbitmq-server >/dev/null
}

node_count() { cat "$DIR/size" 2>/dev/null || echo 0; }
name() { echo "tracehop-$1@localhost"; }
port() { echo $((BASE_PORT + $1 - 1)); }

# The environment of node $1: its own files, the shared cookie (in $HOME), loopback only.
node_env() {
  local d=$DIR/node$1
  echo HOME="$DIR/home" RABBITMQ_NODENAME="$(name "$1")" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$(port "$1")" RABBITMQ_DIST_PORT=$(($(port "$1") + 20000)) \
    RABBITMQ_MNESIA_BASE="$d/mnesia" RABBITMQ_LOG_BASE="$d/log" \
    RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf" RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins" ERL_EPMD_ADDRESS=127.0.0.1
}

ctl() { local i=$1; shift; env $(node_env "$i") "$BIN/rabbitmqctl" -n "$(name "$i")" "$@"; }
running() { ctl "$1" -q ping >/dev/null 2>&1; }

start_node() {
  local i=$1
  if running "$i"; then echo "rabbitmq-cluster: $(name "$i") already running"; return; fi
  mkdir -p "$DIR/node$i/mnesia" "$DIR/node$i/log"
  echo "rabbitmq-cluster: starting $(name "$i") on 127.0.0.1:$(port "$i")"
  (env $(node_env "$i") setsid "$BIN/rabbitmq-server" >"$DIR/node$i/server.out" 2>&1 &)
  # rabbitmqctl fails at once until the node has registered with epmd: wait for that first.
  local _
  for _ in $(seq 1 90); do running "$i" && break; sleep 1; done
  ctl "$i" -q await_startup --timeout 90 >/dev/null 2>&1 ||
    die "$(name "$i") did not start; see $DIR/node$i/server.out and $DIR/node$i/log"
}

url() {
  local n urls=() i
  n=$(node_count)
  [ "$n" -gt 0 ] || die "no cluster in $DIR (scripts/rabbitmq-cluster.sh start)"
  for i in $(seq 1 "$n"); do urls+=("amqp://guest:guest@127.0.0.1:$(port "$i")/%2f"); done
  (IFS=,; echo "${urls[*]}")
}

case ${1:-} in
  start)
    size=${2:-3}
    [[ $size =~ ^[1-9][0-9]*$ ]] || die "node count must be a positive number, not '$size'"
    existing=$(node_count)
    [ "$existing" -eq 0 ] || [ "$existing" -eq "$size" ] ||
      die "a cluster of $existing nodes exists in $DIR; stop it first"
    install_server
    mkdir -p "$DIR/home"
    [ -f "$DIR/home/.erlang.cookie" ] || {
      head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/home/.erlang.cookie"
      chmod 400 "$DIR/home/.erlang.cookie"
    }
    : >"$DIR/rabbitmq-env.conf"
    echo "[]." >"$DIR/enabled_plugins"
    printf 'log.file.level = warning\nlog.console = false\n' >"$DIR/rabbitmq.conf"
    echo "$size" >"$DIR/size"
    for i in $(seq 1 "$size"); do start_node "$i"; done
    for i in $(seq 2 "$size"); do
      if ctl "$i" -q cluster_status 2>/dev/null | grep -q "$(name 1)"; then continue; fi
      echo "rabbitmq-cluster: $(name "$i") joins $(name 1)"
      ctl "$i" -q stop_app >/dev/null
      ctl "$i" -q join_cluster "$(name 1)" >/dev/null
      ctl "$i" -q start_app >/dev/null
    done
    echo "rabbitmq-cluster: $size nodes running; AMQP_URL=$(url)"
    ;;
  url) url ;;
  status)
    for i in $(seq 1 "$(node_count)"); do
      if running "$i"; then
        ctl "$i" cluster_status
        ctl "$i" list_queues name type leader members online messages
        exit 0
      fi
    done
    die "no node of the cluster in $DIR is running"
    ;;
  stop-node) [ -n "${2:-}" ] || die "which node?"; ctl "$2" -q stop >/dev/null; echo "rabbitmq-cluster: $(name "$2") stopped" ;;
  start-node) [ -n "${2:-}" ] || die "which node?"; start_node "$2" ;;
  stop)
    for i in $(seq 1 "$(node_count)"); do running "$i" && ctl "$i" -q stop >/dev/null || true; done
    rm -rf "$DIR"
    echo "rabbitmq-cluster: stopped and removed"
    ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
