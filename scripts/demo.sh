#!/usr/bin/env bash
# The README's main job: install what is missing, build, start zerobus-local on free
# loopback ports, ingest 1,000,000 JSON records through libzerobus (examples/
# ingest_json.c, OAuth through zerobus-local's token endpoint), print the
# throughput and the row count read back from SQLite, then stop the server.
#   scripts/demo.sh [COUNT] [BATCH]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COUNT=${1:-1000000}
BATCH=${2:-1}
TABLE=main.demo.events

"$ROOT/scripts/deps.sh"
"$ROOT/scripts/build.sh" plain > "$ROOT/build/demo-build.log" 2>&1 || {
  tail -40 "$ROOT/build/demo-build.log"; exit 1; }
BUILD="$ROOT/build/plain"

work=$(mktemp -d)
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
"$BUILD/server/zerobus-local" --port 0 --http-port 0 --db "$work/demo.db" \
  --client-id demo-client --client-secret demo-secret > "$work/server.out" 2> "$work/server.err" &
server=$!
for _ in $(seq 100); do grep -q '^zerobus-local ' "$work/server.out" && break; sleep 0.1; done
line=$(grep '^zerobus-local ' "$work/server.out") || { cat "$work/server.err"; exit 1; }
echo "$line"
grpc=$(sed -E 's/.*grpc=([^ ]+).*/\1/' <<< "$line")
http=$(sed -E 's/.*http=([^ ]+).*/\1/' <<< "$line")

ZEROBUS_CLIENT_ID=demo-client ZEROBUS_CLIENT_SECRET=demo-secret \
  "$BUILD/examples/ingest_json" "http://$grpc" "http://$http" "$TABLE" "$COUNT" "$BATCH"

kill -TERM $server; wait $server || true
rows=$(sqlite3 "$work/demo.db" "SELECT count(*) FROM \"$TABLE\"")
echo "rows stored in SQLite table $TABLE: $rows"
[ "$rows" -ge "$COUNT" ]
