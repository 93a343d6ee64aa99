#!/usr/bin/env bash
# Lane A: unit tests of the support modules (errors, options, log, endpoint, proxy,
# OAuth, JSON check, headers, API table), then install into a temporary prefix and
# build consumers with pkg-config and find_package(zerobus).
set -euo pipefail
ctest --test-dir "$BUILD" -L unit --output-on-failure -j1 --timeout 300
"$ROOT/tests/unit/install_check.sh" "$BUILD"
