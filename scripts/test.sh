#!/usr/bin/env bash
# The whole test suite (the README's test command; .ci/run calls it).
# Installs what is missing, builds, then runs every stage in scripts/test.d/:
# stages named a-* run one after another in lane A (plain build); stages named
# b-* run in lane B at the same time (sanitizer builds, slow variants), so both
# cores stay busy. Prints one line per stage and a closing "N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ROOT
LOGS="$ROOT/build/test-logs"
mkdir -p "$LOGS"
start=$(date +%s)

"$ROOT/scripts/deps.sh" || { echo "deps: failed"; exit 1; }
JOBS=2 "$ROOT/scripts/build.sh" plain > "$LOGS/build-plain.log" 2>&1 || {
  tail -50 "$LOGS/build-plain.log"; echo "build: failed"; echo "0 passed, 1 failed"; exit 1; }
export BUILD="$ROOT/build/plain"

only=${ZEROBUS_TEST_ONLY:-}   # optional glob to run a subset, e.g. "a-10*"
run_lane() {
  local lane=$1 result=$2
  : > "$result"
  for stage in "$ROOT"/scripts/test.d/"$lane"-*.sh; do
    [ -e "$stage" ] || continue
    name=$(basename "$stage" .sh)
    if [ -n "$only" ]; then case "$name" in $only) ;; *) continue ;; esac; fi
    t0=$(date +%s)
    if bash "$stage" > "$LOGS/$name.log" 2>&1; then r=PASS; else r=FAIL; fi
    echo "$r $name $(( $(date +%s) - t0 ))s" | tee -a "$result"
  done
}
run_lane b "$LOGS/lane-b.txt" &
lane_b=$!
run_lane a "$LOGS/lane-a.txt"
wait $lane_b

passed=$(cat "$LOGS"/lane-?.txt | grep -c '^PASS' || true)
failed=$(cat "$LOGS"/lane-?.txt | grep -c '^FAIL' || true)
for f in $(cat "$LOGS"/lane-?.txt | awk '$1=="FAIL"{print $2}'); do
  echo "----- $f (last 60 lines of build/test-logs/$f.log)"
  tail -60 "$LOGS/$f.log"
done
echo "test suite: $(( $(date +%s) - start ))s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
