#!/usr/bin/env bash
# Benchmarks log-service: durable ingest (OTLP gRPC batches of 512, REST batch route), trace lookup
# p50/p99 with N stored logs, bytes on disk per record, then ingest with retention and alert
# evaluation running against ingest without (OPS_ROUNDS rounds of phases of OPS_ROWS records, rules
# evaluated every OPS_EVAL_MS, log-service's default interval, so a phase of about 15 s holds about
# one round) and the time a retention run takes to drop one tenant's day of OPS_DAY_ROWS logs;
# SQLite and PostgreSQL side by side.
#
#   scripts/bench-log-service.sh                      # 1M rows, both backends
#   ROWS=10000000 BACKEND=sqlite scripts/bench-log-service.sh
#   DAYS=30 BACKEND=sqlite scripts/bench-log-service.sh   # traces spread over 30 day partitions
#
# PostgreSQL: POSTGRES_URL (default postgres://postgres@127.0.0.1:5432, a database is created and dropped).
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS="${ROWS:-1000000}"
INGEST_ROWS="${INGEST_ROWS:-200000}"
LOOKUPS="${LOOKUPS:-2000}"
DAYS="${DAYS:-1}"
OPS_ROWS="${OPS_ROWS:-3000000}"
OPS_DAY_ROWS="${OPS_DAY_ROWS:-500000}"
OPS_ROUNDS="${OPS_ROUNDS:-2}"
OPS_EVAL_MS="${OPS_EVAL_MS:-15000}"
BACKEND="${BACKEND:-both}"
POSTGRES_URL="${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
BENCH_DIR="${BENCH_DIR:-${TMPDIR:-/tmp}/log-service-bench}"

cargo build --release -p log-service --example bench
exec target/release/examples/bench \
  --rows "$ROWS" \
  --ingest-rows "$INGEST_ROWS" \
  --lookups "$LOOKUPS" \
  --days "$DAYS" \
  --ops-rows "$OPS_ROWS" \
  --ops-day-rows "$OPS_DAY_ROWS" \
  --ops-rounds "$OPS_ROUNDS" \
  --ops-eval-ms "$OPS_EVAL_MS" \
  --backend "$BACKEND" \
  --postgres-url "$POSTGRES_URL" \
  --dir "$BENCH_DIR"
