#!/usr/bin/env bash
# Lane A: zerobus-local conformance tests (tests/server, Python grpcio client + pytest),
# then the hostile-input tests again against an ASan+UBSan build of zerobus-local.
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$ROOT/build/plain}
export ROOT BUILD
VENV="$ROOT/build/venv-server"
if ! "$VENV/bin/python" -c "import grpc, grpc_tools, pytest" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q grpcio grpcio-tools pytest
fi
cmake --build "$BUILD" --target zerobus-local zl_harness test_zl_harness -j2 >/dev/null
cd "$ROOT/tests/server"

echo "== conformance tests (plain build)"
ZEROBUS_LOCAL_BIN="$BUILD/server/zerobus-local" \
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider .

echo "== C harness tests (ctest -L server)"
ctest --test-dir "$BUILD" -L server --output-on-failure -j1 --timeout 300

echo "== hostile input against an ASan+UBSan zerobus-local"
# A private build dir: lane B's b-10-asan builds build/asan at the same time, and two
# builds in one tree would race. Same configuration as scripts/build.sh asan.
ASAN_DIR="$ROOT/build/asan-server"
cmake -S "$ROOT" -B "$ASAN_DIR" -DZEROBUS_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$ASAN_DIR" --target zerobus-local -j2 >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp
ZEROBUS_LOCAL_BIN="$ASAN_DIR/server/zerobus-local" ZL_SANITIZED=1 \
  "$VENV/bin/python" -m pytest -q -p no:cacheprovider test_hostile.py test_null_store.py
