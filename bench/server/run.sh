#!/usr/bin/env bash
# Prints the records/s zerobus-local sustains (acks included) with --store null (the
# server's gRPC path alone) and --store sqlite (decode + group-committed inserts), using
# zl_bench, a C gRPC-core client with hand-encoded JSON batches.
#   bench/server/run.sh            (BUILD defaults to build/plain; RECORDS scales the runs)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build/plain}
RECORDS=${RECORDS:-2000000}
cmake --build "$BUILD" --target zerobus-local zl_bench -j2 >/dev/null
SERVER="$BUILD/server/zerobus-local"
BENCH="$BUILD/bench/server/zl_bench"
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

start() { # start <store>
  "$SERVER" --port 0 --http-port 0 --no-auth --store "$1" --db "$tmp/bench-$1.db" \
    > "$tmp/ready" 2> "$tmp/server.log" &
  pid=$!
  for _ in $(seq 100); do grep -q grpc= "$tmp/ready" 2>/dev/null && break; sleep 0.05; done
  port=$(sed -n 's/.*grpc=[^:]*:\([0-9]*\).*/\1/p' "$tmp/ready")
}
stop() { kill "$pid"; wait "$pid" || true; pid=; }

run() { # run <label> <records> <batch> <size> <streams>
  printf '%-8s batch=%-5s size=%-4s streams=%s  ' "$1" "$3" "$4" "$5"
  "$BENCH" --target "127.0.0.1:$port" --records "$2" --batch "$3" --size "$4" \
    --streams "$5" --window 5000 --table "bench.s$RANDOM.t" | sed 's/.*records_per_sec=/records\/s=/'
}

echo "zerobus-local benchmark ($(nproc) cores; client and server on this machine)"
start null
run null $((RECORDS / 4)) 1 20 1
run null "$RECORDS" 100 20 1
run null "$((RECORDS * 2))" 1000 20 1
run null "$RECORDS" 100 220 1
run null "$RECORDS" 100 20 4
stop
start sqlite
run sqlite $((RECORDS / 8)) 1 20 1
run sqlite $((RECORDS / 4)) 100 20 1
run sqlite $((RECORDS / 4)) 1000 20 1
run sqlite $((RECORDS / 4)) 100 220 1
run sqlite $((RECORDS / 4)) 100 20 4
stop
