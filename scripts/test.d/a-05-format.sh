#!/usr/bin/env bash
# Lane A: every C file follows .clang-format (the public header and its baseline
# copy are exempt: their layout is part of the reviewed ABI text).
set -euo pipefail
cd "$ROOT"
bad=0
for f in $(git ls-files '*.c' '*.h' | grep -v -e '^include/zerobus_abi.h$' -e '^abi-check/baseline/'); do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "not clang-formatted: $f"; bad=1; }
done
echo "format: $(git ls-files '*.c' '*.h' | wc -l) files checked"
exit $bad
