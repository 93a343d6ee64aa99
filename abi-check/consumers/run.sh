#!/usr/bin/env bash
# Builds (where needed) and runs one proof consumer against the current build:
#   abi-check/consumers/run.sh python|go|java|node
# Each consumer starts its own zerobus-local, ingests 1,000 records into
# main.default.abi_<lang>, checks acks 0..999 in order and 1,000 stored rows.
# Build outputs go to $BUILD/abi-check/consumers/<lang>/.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${ROOT:-$(cd "$HERE/../.." && pwd)}
BUILD=${BUILD:-$ROOT/build/plain}
export ROOT BUILD
LIB="$BUILD/src/libzerobus.so.1"
SERVER="$BUILD/server/zerobus-local"
lang=${1:?usage: run.sh python|go|java|node}
OUT="$BUILD/abi-check/consumers/$lang"
mkdir -p "$OUT"
for f in "$LIB" "$SERVER"; do [ -x "$f" ] || [ -f "$f" ] || { echo "missing $f"; exit 1; }; done
CFLAGS=(-std=c11 -O1 -g -Wall -Wextra -Werror -fPIC -shared -I"$ROOT/include")

case "$lang" in
  python)
    ZEROBUS_LIB="$LIB" ZEROBUS_LOCAL_BIN="$SERVER" timeout 180 python3 "$HERE/python_ctypes.py"
    ;;
  go)
    # No external modules: -mod=mod and a local toolchain, nothing downloaded.
    cd "$HERE/go"
    export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=1
    unformatted=$(gofmt -l .)
    [ -z "$unformatted" ] || { echo "gofmt: $unformatted"; exit 1; }
    go vet .
    timeout 300 go run . -lib "$LIB" -server "$SERVER"
    ;;
  java)
    JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}
    [ -f "$JAVA_HOME/include/jni.h" ] || { echo "no JDK headers under $JAVA_HOME"; exit 1; }
    gcc "${CFLAGS[@]}" -I"$JAVA_HOME/include" -I"$JAVA_HOME/include/linux" \
      "$HERE/java/zerobus_jni.c" -o "$OUT/libzerobus_abi_jni.so" \
      "$LIB" -Wl,-rpath,"$BUILD/src" -Wl,--no-undefined
    "$JAVA_HOME/bin/javac" -Xlint:all -Werror -d "$OUT/classes" "$HERE/java/AbiConsumer.java"
    timeout 180 "$JAVA_HOME/bin/java" -Xcheck:jni -Djava.library.path="$OUT" -cp "$OUT/classes" \
      AbiConsumer "$SERVER"
    ;;
  node)
    NODE_INC=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node
    [ -f "$NODE_INC/node_api.h" ] || NODE_INC=/usr/include/node
    [ -f "$NODE_INC/node_api.h" ] || { echo "no node_api.h (Node headers)"; exit 1; }
    gcc "${CFLAGS[@]}" -DNODE_GYP_MODULE_NAME=zerobus_abi -I"$NODE_INC" \
      "$HERE/node/addon.c" -o "$OUT/zerobus_abi.node" "$LIB" -Wl,-rpath,"$BUILD/src"
    timeout 180 node "$HERE/node/consumer.js" "$OUT/zerobus_abi.node" "$SERVER"
    ;;
  *) echo "unknown consumer $lang"; exit 2 ;;
esac
