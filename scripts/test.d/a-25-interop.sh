#!/usr/bin/env bash
# Lane A: the official Python SDK (databricks-zerobus-ingest-sdk, from PyPI) ingests JSON
# and PROTO records into zerobus-local over plaintext, with OAuth through zerobus-local's
# token endpoint and with a custom headers provider; rows in SQLite must equal what was
# sent (tests/server/interop_sdk.py).
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$ROOT/build/plain}
export ROOT BUILD
SDK_VERSION=${ZEROBUS_SDK_VERSION:-1.10.0}   # the version this check was written against
VENV="$ROOT/build/venv-interop"
if ! "$VENV/bin/python" -c "import zerobus.sdk.sync, grpc_tools, grpc" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "databricks-zerobus-ingest-sdk==$SDK_VERSION" protobuf grpcio grpcio-tools
fi
"$VENV/bin/pip" list 2>/dev/null | grep -i -E "^databricks-zerobus-ingest-sdk " || true
cmake --build "$BUILD" --target zerobus-local -j2 >/dev/null
export ZEROBUS_LOCAL_BIN="$BUILD/server/zerobus-local"
export RUST_LOG=${RUST_LOG:-warn}
"$VENV/bin/python" "$ROOT/tests/server/interop_sdk.py"
