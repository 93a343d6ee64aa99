#!/usr/bin/env bash
# Regenerates the ABI baseline from a real build of the library (policy: README.md).
#
#   abi-check/update-baseline.sh [--soname-bump | --pre-release] [LIBRARY]
#
# --pre-release: replace the baseline even with incompatible changes, allowed only
# while the baseline is a pre-release (ZEROBUS_VERSION_MAJOR 0 in the baseline
# header, i.e. no 1.x library has shipped). After the first release it is refused.
#
# LIBRARY defaults to $BUILD/src/libzerobus.so.1 (BUILD defaults to build/plain).
# Writes abi-check/baseline/{zerobus_abi.h, libzerobus.abi.xml, symbols.txt, INFO}.
# Refuses when check.sh finds an incompatible change (removed symbol, abidiff bit 8,
# changed constant, change that is not an allowed extension) unless --soname-bump is
# given AND the library's SONAME differs from the baseline's (a new ABI generation).
# Also refuses when a function declared in the header is not exported, or when the
# library exports anything outside zerobus_*: a baseline must describe a complete,
# clean library. Commit the four files together with the change they record.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${ROOT:-$(cd "$HERE/.." && pwd)}
BUILD=${BUILD:-$ROOT/build/plain}
BUMP=0
PRE=0
if [ "${1:-}" = "--soname-bump" ]; then BUMP=1; shift; fi
if [ "${1:-}" = "--pre-release" ]; then PRE=1; shift; fi
LIB=${1:-$BUILD/src/libzerobus.so.1}
BASE="$HERE/baseline"
# shellcheck source=abi-check/lib.sh
. "$HERE/lib.sh"

[ -f "$LIB" ] || { echo "update-baseline: $LIB not found (scripts/build.sh plain)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

exported_symbols "$LIB" > "$work/symbols.txt"
if awk '$1 !~ /^zerobus_[a-z0-9_]+$/ || $2 !~ /^ZEROBUS_[0-9]+\.[0-9]+$/ || $3 != "FUNC"' \
    "$work/symbols.txt" | grep -q .; then
  echo "update-baseline: the library exports symbols outside the policy:" >&2
  awk '$1 !~ /^zerobus_[a-z0-9_]+$/ || $2 !~ /^ZEROBUS_[0-9]+\.[0-9]+$/ || $3 != "FUNC"' \
    "$work/symbols.txt" | head -20 >&2
  exit 1
fi
missing=$(declared_functions "$ROOT/include/zerobus_abi.h" |
          awk 'NR==FNR {seen[$1]=1; next} !($1 in seen)' "$work/symbols.txt" - | tr '\n' ' ')
if [ -n "${missing// }" ]; then
  echo "update-baseline: declared in include/zerobus_abi.h but not exported: $missing" >&2
  exit 1
fi
soname=$(readelf -d "$LIB" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
major=$(awk '$1=="#define" && $2=="ZEROBUS_ABI_MAJOR" {print $3}' "$ROOT/include/zerobus_abi.h")
if [ "$soname" != "libzerobus.so.$major" ]; then
  echo "update-baseline: SONAME '$soname' does not match ZEROBUS_ABI_MAJOR $major" >&2
  exit 1
fi

if [ -f "$BASE/libzerobus.abi.xml" ]; then
  old_major=$(awk '$1=="#define" && $2=="ZEROBUS_ABI_MAJOR" {print $3}' "$BASE/zerobus_abi.h")
  if ABI_CHECK_STRICT=0 "$HERE/check.sh" "$LIB" > "$work/check.log" 2>&1; then
    echo "update-baseline: check.sh passes against the old baseline (compatible change)"
  elif [ $BUMP = 1 ] && [ "$major" != "$old_major" ]; then
    echo "update-baseline: incompatible change recorded as ABI generation $major ($soname)"
  elif [ $PRE = 1 ] && [ "$(awk '$1=="#define" && $2=="ZEROBUS_VERSION_MAJOR" {print $3}' "$BASE/zerobus_abi.h")" = 0 ]; then
    grep -E '^FAIL' "$work/check.log" | sed 's/^/  replacing despite: /'
    echo "update-baseline: pre-release baseline replaced (no 1.x release has shipped)"
  else
    grep -E '^(FAIL|  )' "$work/check.log" | head -40 >&2
    echo "update-baseline: refusing: incompatible with the baseline; an incompatible change" \
         "needs a SONAME bump (README.md), then --soname-bump" \
         "(or, before the first release only, --pre-release)" >&2
    exit 1
  fi
fi

mkdir -p "$BASE"
abi_dump "$LIB" "$ROOT/include" "$work/libzerobus.abi.xml"
cp "$work/libzerobus.abi.xml" "$BASE/libzerobus.abi.xml"
cp "$work/symbols.txt" "$BASE/symbols.txt"
cp "$ROOT/include/zerobus_abi.h" "$BASE/zerobus_abi.h"
{
  echo "library: $soname ($(awk '$1=="#define" && $2=="ZEROBUS_VERSION_STR" {print $3}' "$ROOT/include/zerobus_abi.h"))"
  echo "source commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet -- include src 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "exported functions: $(wc -l < "$work/symbols.txt")"
  echo "version nodes: $(awk '{print $2}' "$work/symbols.txt" | sort -u | tr '\n' ' ')"
  echo "tools: $(abidw --version | head -1), $(gcc --version | head -1)"
} > "$BASE/INFO"
echo "update-baseline: wrote $BASE (zerobus_abi.h, libzerobus.abi.xml, symbols.txt, INFO)"
cat "$BASE/INFO"
