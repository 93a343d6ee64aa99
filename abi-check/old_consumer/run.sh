#!/usr/bin/env bash
# Builds old_consumer.c against the BASELINE header only (abi-check/baseline; the
# current include/ is not on the include path), links it to the current
# libzerobus.so.1, runs it against a fresh zerobus-local (with OAuth), and checks
# the rows stored in SQLite. Exits non-zero on any failure.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${ROOT:-$(cd "$HERE/../.." && pwd)}
BUILD=${BUILD:-$ROOT/build/plain}
OUT="$BUILD/abi-check/old_consumer"
mkdir -p "$OUT"
[ -f "$ROOT/abi-check/baseline/zerobus_abi.h" ] || { echo "no baseline header"; exit 1; }

gcc -std=c11 -Wall -Wextra -Werror -O1 -g -I"$ROOT/abi-check/baseline" \
  "$HERE/old_consumer.c" -o "$OUT/old_consumer" \
  "$BUILD/src/libzerobus.so.1" -Wl,-rpath,"$BUILD/src"
# The binary must resolve libzerobus by SONAME, and find every symbol at the
# baseline's version node.
readelf -d "$OUT/old_consumer" | grep -q 'NEEDED.*\[libzerobus.so.1\]' ||
  { echo "old_consumer does not depend on libzerobus.so.1"; exit 1; }
nm -D --undefined-only --with-symbol-versions "$OUT/old_consumer" |
  awk '/zerobus_/ && $2 !~ /@ZEROBUS_1\.0$/ {print; bad=1} END {exit bad}' ||
  { echo "old_consumer binds a zerobus symbol outside ZEROBUS_1.0"; exit 1; }

work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
echo '{"tables": {"main.default.abi_old_unacked": [{"no_ack": true}]}}' > "$work/faults.json"
"$BUILD/server/zerobus-local" --port 0 --http-port 0 --db "$work/old.db" \
  --faults "$work/faults.json" > "$work/server.out" 2> "$work/server.err" &
server=$!
for _ in $(seq 100); do grep -q '^zerobus-local ' "$work/server.out" && break; sleep 0.1; done
line=$(grep '^zerobus-local ' "$work/server.out") || { cat "$work/server.err"; exit 1; }
grpc=$(sed -E 's/.*grpc=([^ ]+).*/\1/' <<< "$line")
http=$(sed -E 's/.*http=([^ ]+).*/\1/' <<< "$line")

# ABI_VALGRIND=1: run the old consumer under valgrind (leaks, invalid accesses).
vg=()
if [ "${ABI_VALGRIND:-0}" = 1 ]; then
  vg=(valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=9
      --suppressions="$ROOT/tests/valgrind.supp")
fi
timeout 300 "${vg[@]}" "$OUT/old_consumer" "http://$grpc" "http://$http"

kill -TERM "$server"
wait "$server"
server=""
fail=0
for t in main.default.abi_old:1000 main.default.abi_old_events:1000 main.default.abi_old_unacked:4; do
  rows=$(sqlite3 "$work/old.db" "SELECT count(*) FROM \"${t%%:*}\"")
  if [ "$rows" = "${t##*:}" ]; then echo "rows ${t%%:*}: $rows"
  else echo "rows ${t%%:*}: $rows, expected ${t##*:}"; fail=1; fi
done
# The payloads are the records, in order (ids 0..999 on the main table).
ids=$(sqlite3 "$work/old.db" "SELECT group_concat(id) FROM (SELECT id FROM \"main.default.abi_old\" ORDER BY rowid)")
want=$(seq -s, 0 999)
[ "$ids" = "$want" ] || { echo "main.default.abi_old ids not 0..999 in order"; fail=1; }
exit $fail
