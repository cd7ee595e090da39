#!/usr/bin/env bash
# One-shot Kibana setup for the ELK stack (service kibana-setup). Idempotent: re-running it
# overwrites the same objects.
#  - data view "tracehop logs" (id tracehop-logs) over tracehop-logs-*, made the default, with
#    trace.id rendered as a link to the trace in Jaeger;
#  - saved search "tracehop: order logs" with the useful columns, so Discover answers
#    `trace.id : "<id>"` the moment the stack is up.
set -euo pipefail

KIBANA_URL="${KIBANA_URL:-http://kibana:5601}"
JAEGER_PUBLIC_URL="${JAEGER_PUBLIC_URL:-http://127.0.0.1:16686}"
DATA_VIEW_ID=tracehop-logs
SEARCH_ID=tracehop-order-logs

api() {
  local method=$1 path=$2 body=${3:-}
  curl -fsS -X "$method" "$KIBANA_URL$path" \
    -H 'kbn-xsrf: tracehop-setup' -H 'Content-Type: application/json' \
    ${body:+--data "$body"}
}

echo "kibana-setup: waiting for Kibana at $KIBANA_URL"
for _ in $(seq 1 120); do
  # The overall level, not any plugin's: the compose healthcheck uses the same pattern.
  if curl -fsS "$KIBANA_URL/api/status" 2>/dev/null | grep -Eq '"overall":\{[^{}]*"level":"available"'; then
    break
  fi
  sleep 5
done

api POST /api/data_views/data_view "$(cat <<JSON
{
  "override": true,
  "data_view": {
    "id": "$DATA_VIEW_ID",
    "name": "tracehop logs",
    "title": "tracehop-logs-*",
    "timeFieldName": "@timestamp",
    "fieldFormats": {
      "trace.id": {
        "id": "url",
        "params": { "urlTemplate": "$JAEGER_PUBLIC_URL/trace/{{value}}", "labelTemplate": "{{value}}", "openLinkInCurrentTab": false }
      }
    }
  }
}
JSON
)" >/dev/null
echo "kibana-setup: data view $DATA_VIEW_ID"

api POST /api/data_views/default "{\"data_view_id\": \"$DATA_VIEW_ID\", \"force\": true}" >/dev/null

SEARCH_SOURCE='{\"query\":{\"query\":\"\",\"language\":\"kuery\"},\"filter\":[],\"indexRefName\":\"kibanaSavedObjectMeta.searchSourceJSON.index\"}'
api POST "/api/saved_objects/search/$SEARCH_ID?overwrite=true" "$(cat <<JSON
{
  "attributes": {
    "title": "tracehop: order logs",
    "description": "Every service's log lines. Search one order with trace.id : \"<trace id>\"; the trace.id value links to the trace in Jaeger.",
    "columns": ["service.name", "log.level", "message", "order_id", "trace.id"],
    "sort": [["@timestamp", "desc"]],
    "kibanaSavedObjectMeta": { "searchSourceJSON": "$SEARCH_SOURCE" }
  },
  "references": [
    { "name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": "$DATA_VIEW_ID" }
  ]
}
JSON
)" >/dev/null
echo "kibana-setup: saved search $SEARCH_ID"
echo "kibana-setup: done: http://127.0.0.1:5601/app/discover#/view/$SEARCH_ID"
