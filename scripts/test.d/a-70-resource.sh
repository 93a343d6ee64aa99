#!/usr/bin/env bash
# Lane A: resource bounds (tests/resource, CTest label "resource"): memory under
# max_inflight_bytes plus bookkeeping with a million records in flight to a
# server that never acks; threads and file descriptors back to baseline after
# 1,000 stream and 100 SDK create/close cycles; destroy while other threads are
# blocked in ingest/flush/wait returns them STREAM_CLOSED. About 20 s.
set -uo pipefail
ctest --test-dir "$BUILD" -N -L resource | grep -q "Total Tests: [1-9]" || {
  echo "no resource tests registered in $BUILD"; exit 1; }
mkdir -p "$ROOT/build/test-logs"
log="$ROOT/build/test-logs/resource-ctest.log"
ctest --test-dir "$BUILD" -L resource --output-on-failure -j1 --timeout 300 -V > "$log" 2>&1
rc=$?
# the measured numbers, then CTest's verdict
grep -E "^[0-9]+: (mode=|rss |destroy |stream cycles|sdk cycles|[0-9]+ rounds)" "$log"
grep -E "tests passed|tests failed|\(Failed\)|Timeout" "$log"
[ $rc -eq 0 ] || tail -80 "$log"
exit $rc
