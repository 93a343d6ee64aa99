#!/usr/bin/env bash
# Lane B: every C test (unit, core, server, chaos, resource) in an ASan+UBSan build.
set -euo pipefail
JOBS=1 "$ROOT/scripts/build.sh" asan
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp
ctest --test-dir "$ROOT/build/asan" -L 'unit|core|server|chaos|resource' --output-on-failure -j1 --timeout 600
