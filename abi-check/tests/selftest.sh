#!/usr/bin/env bash
# Self-test of the ABI gate: proves check.sh accepts the compatible extensions the
# policy allows and rejects each kind of break. It builds stub libraries (every
# function returns 0/NULL, see make_stub.py) from mutated copies of the baseline
# header in a scratch tree, makes a baseline from the unmutated one, and runs
# check.sh on each mutation. Prints PASS/FAIL per case; exits 1 on any mismatch.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ABI=$(cd "$HERE/.." && pwd)
REAL_ROOT=$(cd "$ABI/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# scratch tree: include/, src/libzerobus.map, abi-check/{scripts, suppressions, baseline}
mkdir -p "$work/root/include" "$work/root/src" "$work/root/abi-check/baseline"
cp "$ABI"/check.sh "$ABI"/lib.sh "$ABI"/update-baseline.sh "$ABI"/abi_compare.py "$work/root/abi-check/"
cp -r "$ABI/suppressions" "$work/root/abi-check/"
hdr_src="$ABI/baseline/zerobus_abi.h"
[ -f "$hdr_src" ] || hdr_src="$REAL_ROOT/include/zerobus_abi.h"
printf 'ZEROBUS_1.0 {\n  global:\n    zerobus_*;\n  local:\n    *;\n};\n' > "$work/base.map"

build_stub() { # header map soname out
  python3 "$HERE/make_stub.py" "$1" > "$work/stub.c" &&
  cp "$1" "$work/stubinc.h" && mkdir -p "$work/stubinc" && cp "$1" "$work/stubinc/zerobus_abi.h" &&
  gcc -g -O1 -shared -fPIC -fvisibility=hidden -DZEROBUS_BUILDING_LIBRARY -I"$work/stubinc" \
    -Wall -Wno-unused-parameter -o "$4" "$work/stub.c" "${extra_src[@]}" \
    -Wl,-soname,"$3" -Wl,--version-script="$2"
}

extra_src=()
cp "$hdr_src" "$work/root/include/zerobus_abi.h"
build_stub "$work/root/include/zerobus_abi.h" "$work/base.map" libzerobus.so.1 "$work/base.so" ||
  { echo "FAIL selftest: cannot build the baseline stub"; exit 1; }
ROOT="$work/root" BUILD="$work/build" "$work/root/abi-check/update-baseline.sh" "$work/base.so" \
  > "$work/update.log" 2>&1 || { cat "$work/update.log"; echo "FAIL selftest: update-baseline"; exit 1; }

fails=0
# case EXPECT STEP  (mutation given to mutate.py; STEP = the step that must FAIL)
run_case() {
  local name=$1 expect=$2 step=$3
  cp "$hdr_src" "$work/root/include/zerobus_abi.h"
  cp "$work/base.map" "$work/root/src/libzerobus.map"
  extra_src=()
  local soname=libzerobus.so.1
  python3 "$HERE/mutate.py" "$name" "$work/root/include/zerobus_abi.h" "$work/root/src/libzerobus.map" "$work/extra.c" ||
    { echo "FAIL selftest $name: mutation failed"; fails=$((fails + 1)); return; }
  [ -s "$work/extra.c" ] && extra_src=("$work/extra.c")
  [ "$name" = soname_bump ] && soname=libzerobus.so.2
  if ! build_stub "$work/root/include/zerobus_abi.h" "$work/root/src/libzerobus.map" "$soname" \
       "$work/mut.so" > "$work/build.log" 2>&1; then
    # A header that does not compile cannot build a stub either; check the header step alone.
    if [ "$step" != headers ]; then
      cat "$work/build.log"; echo "FAIL selftest $name: stub does not build"; fails=$((fails + 1)); return
    fi
    cp "$work/base.so" "$work/mut.so"
  fi
  ROOT="$work/root" BUILD="$work/build" "$work/root/abi-check/check.sh" "$work/mut.so" > "$work/check.log" 2>&1
  local rc=$?
  local ok=0
  if [ "$expect" = pass ]; then
    [ $rc -eq 0 ] && ok=1
  else
    [ $rc -ne 0 ] && grep -q "^FAIL $step" "$work/check.log" && ok=1
  fi
  if [ $ok = 1 ]; then
    echo "PASS selftest $name (expected $expect${step:+ in $step})"
  else
    echo "FAIL selftest $name (expected $expect${step:+ in $step}, check.sh exit $rc):"
    sed 's/^/    /' "$work/check.log" | head -40
    fails=$((fails + 1))
  fi
}

run_case unchanged pass ""
run_case append_function pass ""
run_case append_callback_member pass ""
run_case append_stats_member pass ""
run_case append_status_code pass ""
run_case new_symbol_in_released_node fail symbols
run_case leak_dependency_symbol fail symbols
run_case unexported_declaration fail symbols
run_case remove_function fail symbols
run_case remove_function_abidiff fail abidiff
run_case reorder_callbacks fail abidiff
run_case insert_stats_member_middle fail abidiff
run_case grow_event_struct pass ""
run_case insert_event_member_middle fail abidiff
run_case change_parameter_type fail abidiff
run_case change_macro_value fail constants
run_case renumber_enum fail constants
run_case enum_member fail rules
run_case bool_member fail rules
run_case variadic_function fail rules
run_case soname_bump fail soname
run_case header_not_cxx fail headers
run_case header_not_self_contained fail headers

# update-baseline.sh refuses to record an incompatible change; --pre-release
# replaces the baseline while it is a 0.x pre-release, and the gate then passes.
cp -r "$work/root" "$work/root2"
cp "$hdr_src" "$work/root2/include/zerobus_abi.h"
python3 "$HERE/mutate.py" reorder_callbacks "$work/root2/include/zerobus_abi.h" "$work/root2/src/libzerobus.map" "$work/extra.c"
extra_src=()
build_stub "$work/root2/include/zerobus_abi.h" "$work/base.map" libzerobus.so.1 "$work/re.so" > /dev/null 2>&1
u1=0; u2=0; c2=0
ROOT="$work/root2" BUILD="$work/build2" "$work/root2/abi-check/update-baseline.sh" "$work/re.so" > "$work/u1.log" 2>&1 || u1=$?
ROOT="$work/root2" BUILD="$work/build2" "$work/root2/abi-check/update-baseline.sh" --pre-release "$work/re.so" > "$work/u2.log" 2>&1 || u2=$?
ROOT="$work/root2" BUILD="$work/build2" "$work/root2/abi-check/check.sh" "$work/re.so" > "$work/c2.log" 2>&1 || c2=$?
pre_major=$(awk '$1=="#define" && $2=="ZEROBUS_VERSION_MAJOR" {print $3}' "$hdr_src")
if [ $u1 -ne 0 ] && { [ "$pre_major" != 0 ] || { [ $u2 -eq 0 ] && [ $c2 -eq 0 ]; }; }; then
  echo "PASS selftest update-baseline (incompatible change refused; --pre-release: exit $u2, gate after: exit $c2)"
else
  echo "FAIL selftest update-baseline (plain exit $u1, --pre-release exit $u2, gate after $c2)"
  cat "$work/u1.log" "$work/u2.log" "$work/c2.log" | sed 's/^/    /'
  fails=$((fails + 1))
fi

# get_api_test.py must reject broken tables (stub libraries, their own abidw XML).
# shellcheck source=abi-check/lib.sh
. "$ABI/lib.sh"
get_api_case() { # name expect mutation env-assignments...
  local name=$1 expect=$2 mutation=$3
  shift 3
  cp "$hdr_src" "$work/h.h"
  cp "$work/base.map" "$work/m.map"
  python3 "$HERE/mutate.py" "$mutation" "$work/h.h" "$work/m.map" "$work/extra.c" || return 1
  extra_src=()
  if ! ( [ $# -gt 0 ] && export "$@"; build_stub "$work/h.h" "$work/m.map" libzerobus.so.1 "$work/g.so" ) \
       > "$work/build.log" 2>&1; then
    cat "$work/build.log"; echo "FAIL selftest get_api/$name: stub does not build"; fails=$((fails + 1)); return
  fi
  mkdir -p "$work/ginc" && cp "$work/h.h" "$work/ginc/zerobus_abi.h"
  abi_dump "$work/g.so" "$work/ginc" "$work/g.xml"
  python3 "$HERE/get_api_test.py" "$work/g.so" "$work/g.xml" > "$work/g.log" 2>&1
  local rc=$?
  if { [ "$expect" = pass ] && [ $rc -eq 0 ]; } || { [ "$expect" = fail ] && [ $rc -ne 0 ]; }; then
    echo "PASS selftest get_api/$name (expected $expect)$(grep -m1 '^  ' "$work/g.log" | sed 's/^ */: /')"
  else
    echo "FAIL selftest get_api/$name (expected $expect, exit $rc):"; sed 's/^/    /' "$work/g.log"
    fails=$((fails + 1))
  fi
}
get_api_case complete_table pass unchanged
get_api_case appended_function pass append_function
get_api_case null_member fail unchanged STUB_MEMBER_OVERRIDE=stream_wakeup_fd=NULL
get_api_case wrong_member fail unchanged STUB_MEMBER_OVERRIDE=stream_flush=zerobus_stream_close
get_api_case function_without_member fail append_function_without_member
get_api_case any_generation fail unchanged STUB_GET_API_ANY=1

if [ $fails -eq 0 ]; then echo "selftest: all cases behaved as expected"; exit 0; fi
echo "selftest: $fails case(s) wrong"
exit 1
