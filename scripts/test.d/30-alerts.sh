#!/usr/bin/env bash
# End-to-end alert test (real Prometheus and Alertmanager against the services); it lives beside
# the rules and the Alertmanager configuration it exercises.
exec "$(dirname "${BASH_SOURCE[0]}")/../../observability/tests/alerts-e2e.sh" "$@"
