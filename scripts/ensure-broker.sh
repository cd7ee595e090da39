#!/usr/bin/env bash
# Makes sure a RabbitMQ broker answers on 127.0.0.1:5672: installs rabbitmq-server with apt-get
# when it is missing, starts it detached when it is not running, and waits until it accepts
# connections. A broker that already runs is left alone. Idempotent.
set -euo pipefail

HOST=127.0.0.1
PORT=${AMQP_PORT:-5672}

answers() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

if answers; then
  echo "rabbitmq: already running on $HOST:$PORT"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! command -v rabbitmq-server >/dev/null 2>&1 && [ ! -x /usr/sbin/rabbitmq-server ]; then
  echo "rabbitmq: installing rabbitmq-server (apt-get)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rabbitmq-server >/dev/null
fi

# Debian's package may start the service itself; give it a moment before starting our own.
for _ in 1 2 3; do answers && break; sleep 1; done
if ! answers; then
  echo "rabbitmq: starting rabbitmq-server -detached"
  $SUDO env PATH="$PATH:/usr/sbin" rabbitmq-server -detached >/dev/null 2>&1 || true
fi

for i in $(seq 1 90); do
  if answers; then
    # The port opens a little before the broker accepts AMQP sessions.
    if command -v rabbitmqctl >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmqctl ]; then
      $SUDO env PATH="$PATH:/usr/sbin" rabbitmqctl await_startup >/dev/null 2>&1 || sleep 2
    fi
    echo "rabbitmq: running on $HOST:$PORT (after ${i}s)"
    exit 0
  fi
  sleep 1
done
echo "rabbitmq: did not start within 90 s; see /var/log/rabbitmq/" >&2
exit 1
