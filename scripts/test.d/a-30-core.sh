#!/usr/bin/env bash
# Lane A: the libzerobus stream engine's tests (tests/core, CTest label "core")
# against zerobus-local, then the single-record throughput check alone (label
# "perf": >= 3,000,000 records/s of 20-byte records through zerobus_stream_ingest
# against zerobus-local --store null).
# Lane B (sanitizer builds and tests) shares the two cores, so the throughput run
# gets up to three tries; if the machine is still busy on the last one (load
# average above 2.5), the client's own cost is judged instead: at most 200 ns of
# client CPU per record (what 3 M records/s on one core needs is 333 ns).
set -euo pipefail
ctest --test-dir "$BUILD" -L core -LE perf --output-on-failure -j2 --timeout 300
for try in 1 2 3; do
  if [ "$try" = 3 ] && awk '{exit !($1 > 2.5)}' /proc/loadavg; then
    echo "load average $(cut -d' ' -f1 /proc/loadavg): judging client CPU per record"
    export CORE_PERF_MAX_CPU_NS=200
  fi
  if "$BUILD/tests/core/core_test_throughput"; then exit 0; fi
  echo "throughput try $try below target"
  sleep 3
done
exit 1
