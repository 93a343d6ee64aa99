#!/usr/bin/env bash
# Lane A: the libzerobus stream engine's tests (tests/core, CTest label "core")
# against zerobus-local. Speed is measured by scripts/bench.sh, not here.
set -euo pipefail
ctest --test-dir "$BUILD" -L core --output-on-failure -j2 --timeout 300
