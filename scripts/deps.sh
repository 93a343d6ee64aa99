#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the demo need, only when
# something is missing. Safe to run again. Needs root (or sudo) on a fresh machine.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config git
  libgrpc-dev protobuf-compiler libprotobuf-dev protobuf-c-compiler libprotobuf-c-dev
  libsqlite3-dev sqlite3 libmicrohttpd-dev libcurl4-openssl-dev libcjson-dev libssl-dev openssl
  valgrind clang libclang-rt-14-dev abigail-tools swig python3-dev python3-venv clang-format
  openjdk-17-jdk-headless nodejs  # abi-check consumers: javac + jni.h, node + node_api.h/uv.h
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
