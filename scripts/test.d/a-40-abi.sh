#!/usr/bin/env bash
# Lane A: ABI stability of libzerobus.so.1 (abi-check/README.md).
#   check      abi-check/check.sh: header compile checks (C99/C11/C++17), SONAME,
#              exported symbols (zerobus_* only, versioned, none removed), constants,
#              abidiff against the committed baseline
#   selftest   the gate rejects 17 kinds of breaks and accepts 4 compatible extensions;
#              update-baseline refuses a break; get_api_test.py rejects 4 broken tables
#   get_api    zerobus_get_api(1) covers every exported function, = dlsym, get_api(2) NULL
#   old        a consumer built against the BASELINE header runs against this library
#   python/go/java/node  proof consumers (ctypes, cgo+dlopen, JNI, N-API): 1,000 records
#              each into zerobus-local, acks 0..999 in order, 1,000 rows in SQLite
# Prints PASS/FAIL per step; exits 1 when any step fails (all steps always run).
set -uo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$ROOT/build/plain}
export ROOT BUILD
ABI="$ROOT/abi-check"
LOG="$BUILD/abi-check/logs"
mkdir -p "$LOG"
results=()
failed=0

step() { # name command...
  local name=$1
  shift
  local t0=$SECONDS
  echo "===== $name: $*"
  if "$@" > "$LOG/$name.log" 2>&1; then
    cat "$LOG/$name.log"
    results+=("PASS $name ($((SECONDS - t0))s)")
    echo "PASS $name"
  else
    cat "$LOG/$name.log"
    results+=("FAIL $name ($((SECONDS - t0))s) - log: $LOG/$name.log")
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
}

get_api() {
  local xml="$BUILD/abi-check/current.abi.xml"
  if [ ! -s "$xml" ] || [ "$xml" -ot "$BUILD/src/libzerobus.so.1" ]; then
    # shellcheck source=abi-check/lib.sh
    . "$ABI/lib.sh"
    abi_dump "$BUILD/src/libzerobus.so.1" "$ROOT/include" "$xml" || return 1
  fi
  python3 "$ABI/tests/get_api_test.py" "$BUILD/src/libzerobus.so.1" "$xml"
}

step check "$ABI/check.sh" "$BUILD/src/libzerobus.so.1"
step selftest "$ABI/tests/selftest.sh"
step get_api get_api
step old "$ABI/old_consumer/run.sh"
for lang in python go java node; do
  step "$lang" "$ABI/consumers/run.sh" "$lang"
done

echo "===== a-40-abi summary"
printf '%s\n' "${results[@]}"
if [ $failed -ne 0 ]; then
  echo "a-40-abi: $failed step(s) failed"
  exit 1
fi
echo "a-40-abi: all ${#results[@]} steps passed"
