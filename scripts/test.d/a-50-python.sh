#!/usr/bin/env bash
# Python binding (bindings/python): builds and installs the package into a venv
# (build/venv-python) against $BUILD's libzerobus, then runs its pytest suite
# against zerobus-local. Fails when no test ran (pytest exit 5).
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$ROOT/build/plain}
PY=${PYTHON:-/usr/bin/python3}
VENV="$ROOT/build/venv-python"

if ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install -q --disable-pip-version-check \
  "protobuf>=4.25,<7" "pytest>=7" "pytest-asyncio>=0.21" "grpcio-tools>=1.60,<1.80" "setuptools>=64" wheel
ZEROBUS_LIB="$BUILD/src/libzerobus.so.1" "$VENV/bin/pip" install -q --disable-pip-version-check \
  --force-reinstall --no-deps --no-build-isolation "$ROOT/bindings/python"

# Run from outside the source tree so `import zerobus` is the installed package.
cd "$ROOT/build"
export ZEROBUS_LOCAL_BIN="$BUILD/server/zerobus-local"
"$VENV/bin/pytest" -c "$ROOT/bindings/python/pyproject.toml" --rootdir "$ROOT/bindings/python" \
  -p no:cacheprovider -q -ra "$ROOT/bindings/python/tests"
