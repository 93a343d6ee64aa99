#!/usr/bin/env bash
# Configures and builds one variant into build/<variant>:
#   plain (default) | asan (ASan+UBSan) | tsan | fuzz (clang, libFuzzer targets)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
variant=${1:-plain}
dir="$ROOT/build/$variant"
args=(-S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo)
case "$variant" in
  plain) ;;
  asan) args+=(-DZEROBUS_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug) ;;
  tsan) args+=(-DZEROBUS_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug) ;;
  fuzz) args+=(-DZEROBUS_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++) ;;
  *) echo "unknown variant $variant" >&2; exit 2 ;;
esac
cmake "${args[@]}" >/dev/null
cmake --build "$dir" -j"${JOBS:-$(nproc)}"
