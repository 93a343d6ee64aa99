#!/usr/bin/env bash
# Lane A: libFuzzer targets (tests/fuzz), built with clang into build/fuzz
# (-fsanitize=fuzzer,address,undefined), each run for FUZZ_SECONDS (default 16)
# from its committed seed corpus (copied, so the run never rewrites the tree),
# after replaying the committed regression inputs. A crash, sanitizer report,
# leak or failed property check fails the stage; the input that triggered it is
# kept in build/test-logs/fuzz-<target>-crash-*.
set -uo pipefail
FUZZ_BUILD="$ROOT/build/fuzz"
SECS=${FUZZ_SECONDS:-16}
LOGS="$ROOT/build/test-logs"
mkdir -p "$LOGS"
cmake -S "$ROOT" -B "$FUZZ_BUILD" -DZEROBUS_FUZZ=ON -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$LOGS/fuzz-configure.log" 2>&1 ||
  { tail -30 "$LOGS/fuzz-configure.log"; exit 1; }
# only the fuzz targets: the rest of the tree is built by the other variants
cmake --build "$FUZZ_BUILD" -j2 --target fuzzers > "$LOGS/fuzz-build.log" 2>&1 ||
  { grep -E "error|Error" "$LOGS/fuzz-build.log" | head -30; exit 1; }
targets=(fuzz_json_check fuzz_options fuzz_token fuzz_headers fuzz_response fuzz_ack
         fuzz_server_proto fuzz_server_request)
fail=0
for t in "${targets[@]}"; do
  bin="$FUZZ_BUILD/tests/fuzz/$t"
  work=$(mktemp -d)
  cp "$ROOT/tests/fuzz/corpus/$t/"* "$work/" 2>/dev/null || true
  regs=("$ROOT"/tests/fuzz/regressions/"$t"-*)
  if [ -e "${regs[0]}" ]; then
    if ! "$bin" -runs=0 "${regs[@]}" > "$LOGS/fuzz-$t-regressions.log" 2>&1; then
      echo "FAIL $t: a committed regression input still fails:"
      grep -E "FUZZ CHECK|runtime error|ERROR: AddressSanitizer|SUMMARY" "$LOGS/fuzz-$t-regressions.log" | head -5
      fail=1
    fi
  fi
  "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$LOGS/fuzz-$t-" "$work" > "$LOGS/fuzz-$t.log" 2>&1
  rc=$?
  runs=$(grep -E "^stat::number_of_executed_units" "$LOGS/fuzz-$t.log" | awk '{print $2}')
  cov=$(grep -oE "cov: [0-9]+" "$LOGS/fuzz-$t.log" | tail -1)
  corpus=$(ls "$work" | wc -l)
  if [ $rc -eq 0 ]; then
    echo "PASS $t: ${runs:-?} runs in ${SECS}s, $cov, corpus $corpus"
  else
    echo "FAIL $t (exit $rc): see $LOGS/fuzz-$t.log"
    grep -E "FUZZ CHECK|runtime error|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|SUMMARY" "$LOGS/fuzz-$t.log" | head -6
    fail=1
  fi
  rm -rf "$work"
done
exit $fail
