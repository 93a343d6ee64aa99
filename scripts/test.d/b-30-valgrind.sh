#!/usr/bin/env bash
# Lane B: valgrind memcheck over the unit and core tests (plain build). Fails on
# any memcheck error (invalid read/write, uninitialised use, bad free) or any
# definitely/indirectly lost block. "Possibly lost" blocks are reported but do not
# fail: valgrind shows them for process-lifetime singletons inside gRPC and absl.
set -euo pipefail
tmp="$BUILD/Testing/Temporary"
rm -f "$tmp"/MemoryChecker.*.log
ctest --test-dir "$BUILD" -T memcheck -L 'unit|core' --output-on-failure -j1 --timeout 900
logs=("$tmp"/MemoryChecker.*.log)
[ -e "${logs[0]}" ] || { echo "valgrind: no memcheck logs were written"; exit 1; }
bad=0
for f in "${logs[@]}"; do
  prog=$(grep -m1 'Command:' "$f" | awk '{print $3}')
  if grep -qE 'ERROR SUMMARY: [1-9]' "$f" || grep -qE '(definitely|indirectly) lost: [1-9]' "$f"; then
    echo "valgrind: defects in $prog ($f)"; grep -E 'ERROR SUMMARY|lost:' "$f"; bad=1
  fi
done
echo "valgrind: ${#logs[@]} programs checked"
exit $bad
