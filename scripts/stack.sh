#!/usr/bin/env bash
# Starts, stops or checks one observability stack together with the services.
#
#   scripts/stack.sh <classic|elk|lgtm> <up|down|config|ps|logs> [extra compose arguments]
#
# Runs `docker compose -f docker-compose.yml -f <stack>/docker-compose.yml ...` from the
# repository root (falls back to the standalone `docker-compose`). Stacks share host ports
# (Loki 3100, OTLP 4317/4318, Prometheus 9090, Alertmanager 9093): run one at a time.
set -euo pipefail

usage() {
  echo "usage: $0 <classic|elk|lgtm> <up|down|config|ps|logs> [compose arguments]" >&2
  exit 2
}

[[ $# -ge 2 ]] || usage
stack=$1 action=$2
shift 2

case "$stack" in
  classic) dir=observability ;;
  elk) dir=elk ;;
  lgtm) dir=lgtm ;;
  *) usage ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "stack.sh: neither 'docker compose' nor 'docker-compose' is installed" >&2
  echo "  Debian/Ubuntu: sudo apt-get install -y docker-compose (or the docker-compose-plugin package)" >&2
  exit 1
fi
compose+=(-p tracehop -f docker-compose.yml -f "$dir/docker-compose.yml")

print_urls() {
  cat <<TXT

tracehop is up with the $stack stack. Open:
  place an order       curl -s -X POST http://127.0.0.1:3000/create-order
  RabbitMQ             http://127.0.0.1:15672   (guest / guest)
TXT
  case "$stack" in
    classic)
      cat <<TXT
  Grafana              http://127.0.0.1:4000   (dashboards: tracehop / orders)
  Jaeger               http://127.0.0.1:16686
  Prometheus           http://127.0.0.1:9090
  Alertmanager         http://127.0.0.1:9093
  Loki API             http://127.0.0.1:3100
TXT
      ;;
    elk)
      cat <<TXT
  Kibana               http://127.0.0.1:5601/app/discover#/view/tracehop-order-logs
                       (search: trace.id : "<trace id>")
  Jaeger               http://127.0.0.1:16686   (spans stored in Elasticsearch)
  Elasticsearch        http://127.0.0.1:9200
  Prometheus           http://127.0.0.1:9090
  Alertmanager         http://127.0.0.1:9093
TXT
      ;;
    lgtm)
      cat <<TXT
  Grafana              http://127.0.0.1:5000   (dashboards: tracehop / orders, tracehop / traces (LGTM))
  Tempo API            http://127.0.0.1:3200
  Mimir API            http://127.0.0.1:9009
  Loki API             http://127.0.0.1:3100
  Alertmanager         http://127.0.0.1:9093
TXT
      ;;
  esac
  echo "  Walkthrough: docs/stacks.md"
}

case "$action" in
  up)
    "${compose[@]}" up -d --build "$@"
    print_urls
    ;;
  down)
    "${compose[@]}" down "$@"
    ;;
  config)
    "${compose[@]}" config "$@"
    ;;
  ps)
    "${compose[@]}" ps "$@"
    ;;
  logs)
    "${compose[@]}" logs "$@"
    ;;
  *)
    usage
    ;;
esac
