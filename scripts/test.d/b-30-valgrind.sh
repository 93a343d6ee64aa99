#!/usr/bin/env bash
# Lane B: valgrind memcheck over the core and unit tests (plain build): no
# definite leaks, no invalid reads or writes (error exit code 99 fails a test).
set -euo pipefail
ctest --test-dir "$BUILD" -T memcheck -L 'unit|core' --output-on-failure -j1 --timeout 900 | tee "$ROOT/build/test-logs/valgrind-summary.txt"
# ctest -T memcheck reports defects without failing; fail on any.
if grep -E "Memory checking results:" -A30 "$ROOT/build/test-logs/valgrind-summary.txt" | grep -E "^(Definitely|Invalid|Mismatched|Uninitialized|Use of uninit)" ; then
  echo "valgrind: defects found (see build/plain/Testing/Temporary/MemoryChecker.*.log)"
  exit 1
fi
