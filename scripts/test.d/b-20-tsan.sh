#!/usr/bin/env bash
# Lane B: the library's tests (unit, core, chaos, resource) in a ThreadSanitizer build.
set -euo pipefail
JOBS=1 "$ROOT/scripts/build.sh" tsan
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$ROOT/tests/tsan.supp"
ctest --test-dir "$ROOT/build/tsan" -L 'unit|core|chaos|resource' --output-on-failure -j1 --timeout 600
