#!/usr/bin/env bash
# Soak: runs the chaos harness (tests/chaos/zb_chaos) for DURATION_SEC seconds
# and samples the client process every INTERVAL seconds (default 5): resident
# memory, threads, open file descriptors, records accepted so far, and the
# harness's own bookkeeping (its per-ingest-call books grow with the run; the
# library's share is RSS minus that). Prints a table, then the harness's
# verdict (lost must be 0).
#
# usage: scripts/soak.sh DURATION_SEC [extra zb_chaos flags...]
#   env: BUILD (default build/plain), INTERVAL (5), SEED (1000)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${1:?usage: scripts/soak.sh DURATION_SEC [zb_chaos flags]}
shift || true
BUILD=${BUILD:-$ROOT/build/plain}
INTERVAL=${INTERVAL:-5}
SEED=${SEED:-1000}
BIN="$BUILD/tests/chaos/zb_chaos"
[ -x "$BIN" ] || { echo "missing $BIN: run scripts/build.sh plain" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status="$work/status"
# kills spread over the run: one every ~60 s, at least 1
kills=$(( DURATION / 60 )); [ "$kills" -ge 1 ] || kills=1
"$BIN" --seed "$SEED" --duration "$DURATION" --lanes 4 --producers 2 --rate 1000 \
  --chaos-rate 0.02 --kills "$kills" --status-file "$status" "$@" > "$work/out" 2> "$work/err" &
pid=$!
sample() { # prints: rss_kib threads fds
  local rss th fd
  rss=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  th=$(ls "/proc/$pid/task" 2>/dev/null | wc -l)
  fd=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
  echo "${rss:-0} $th $fd"
}
printf "%8s %10s %8s %6s %12s %10s %14s %8s\n" "t(s)" "RSS(MiB)" "threads" "fds" "accepted" "books(MiB)" "RSS-books(MiB)" "kills"
t0=$(date +%s)
first_lib=""; last_lib=""; max_rss=0; min_th=100000; max_th=0; min_fd=100000; max_fd=0
while kill -0 "$pid" 2>/dev/null; do
  read -r rss th fd < <(sample)
  [ "$rss" -gt 0 ] || break
  acc=0; book=0; k=0
  [ -f "$status" ] && read -r acc book k < "$status" || true
  t=$(( $(date +%s) - t0 ))
  rss_mib=$(awk -v r="$rss" 'BEGIN{printf "%.1f", r/1024}')
  book_mib=$(awk -v b="$book" 'BEGIN{printf "%.1f", b/1048576}')
  lib_mib=$(awk -v r="$rss" -v b="$book" 'BEGIN{printf "%.1f", r/1024 - b/1048576}')
  printf "%8s %10s %8s %6s %12s %10s %14s %8s\n" "$t" "$rss_mib" "$th" "$fd" "$acc" "$book_mib" "$lib_mib" "$k"
  # steady-state figures only while producing (the harness verifies afterwards)
  if [ "$t" -ge 10 ] && [ "$t" -le "$DURATION" ]; then
    [ -n "$first_lib" ] || first_lib=$lib_mib
    last_lib=$lib_mib
    [ "$rss" -gt "$max_rss" ] && max_rss=$rss
    [ "$th" -lt "$min_th" ] && min_th=$th; [ "$th" -gt "$max_th" ] && max_th=$th
    [ "$fd" -lt "$min_fd" ] && min_fd=$fd; [ "$fd" -gt "$max_fd" ] && max_fd=$fd
  fi
  sleep "$INTERVAL"
done
rc=0
wait "$pid" || rc=$?
echo
echo "steady state (t=10s..${DURATION}s): RSS-books ${first_lib:-?} -> ${last_lib:-?} MiB, peak RSS $(awk -v r="$max_rss" 'BEGIN{printf "%.1f", r/1024}') MiB, threads ${min_th}..${max_th}, fds ${min_fd}..${max_fd}"
cat "$work/out"
exit $rc
