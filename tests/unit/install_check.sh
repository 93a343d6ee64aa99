#!/usr/bin/env bash
# Installs a build into a temporary prefix and builds consumers against it:
# pkg-config (shared and static) and find_package(zerobus) (both targets).
# Usage: install_check.sh <build dir>
set -euo pipefail
build=${1:?build dir}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/zerobus-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(cd "$(dirname "$(find "$prefix" -name zerobus.pc)")/.." && pwd)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
expect="libzerobus 0.1.0 abi 1 ZEROBUS_ERR_QUEUE_FULL"

check() { # name, command...
  local name=$1; shift
  local out
  out=$("$@")
  if [ "$out" != "$expect" ]; then echo "FAIL $name: got '$out'"; exit 1; fi
  echo "ok   $name"
}

[ "$(pkg-config --modversion zerobus)" = 0.1.0 ] || { echo "FAIL pkg-config version"; exit 1; }
# The file behind the SONAME is libzerobus.so.<ABI major 1>.<minor>.<patch>.
real=$(basename "$(readlink -f "$libdir/libzerobus.so.1")")
[ "$real" = libzerobus.so.1.1.0 ] || { echo "FAIL: libzerobus.so.1 -> $real, want libzerobus.so.1.1.0"; exit 1; }
# shellcheck disable=SC2046
cc -std=c99 -Wall -Werror -o "$work/pc_shared" "$here/consumer/consumer.c" $(pkg-config --cflags --libs zerobus)
check "pkg-config shared" env LD_LIBRARY_PATH="$libdir" "$work/pc_shared"
LD_LIBRARY_PATH="$libdir" ldd "$work/pc_shared" | grep -q 'libzerobus.so.1 => '"$libdir" || { echo "FAIL: not linked to the installed libzerobus.so.1"; exit 1; }

static_deps=$(pkg-config --static --libs zerobus | sed -e 's/-lzerobus_proto//' -e 's/-lzerobus\b//')
# shellcheck disable=SC2086
cc -std=c99 -Wall -Werror -o "$work/pc_static" "$here/consumer/consumer.c" $(pkg-config --cflags zerobus) \
  -Wl,-Bstatic -lzerobus -lzerobus_proto -Wl,-Bdynamic $static_deps
if ldd "$work/pc_static" | grep -q libzerobus; then echo "FAIL: static consumer needs libzerobus.so"; exit 1; fi
check "pkg-config static" "$work/pc_static"

cmake -S "$here/consumer" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cm" >/dev/null
check "find_package zerobus::zerobus" "$work/cm/consumer_shared"
check "find_package zerobus::zerobus_static" "$work/cm/consumer_static"
