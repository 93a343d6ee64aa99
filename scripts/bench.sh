#!/usr/bin/env bash
# Benchmarks (issue #6): the C API, our Python binding and the official Python SDK
# (databricks-zerobus-ingest-sdk) against zerobus-local, plus the callgrind figure
# (instructions per ingested record on the C path). docs/PERFORMANCE.md explains the
# method and holds the results of a full run.
#
#   scripts/bench.sh [--quick] [--only c|python|official[,...]] [--runs N]
#                    [--no-sqlite] [--no-callgrind] [--callgrind-only] [--pause SEC]
#
#   --quick    10x fewer records, one run per row
#   --only     c = C API, python = our binding, official = the official SDK
#              (the ratio column needs both python and official)
# Environment: BUILD (default build/plain), OFFICIAL_SDK_VERSION (default: latest on
# PyPI), BENCH_OUT (default build/bench). Results: $BENCH_OUT/results.json.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build/plain}
OUT=${BENCH_OUT:-$ROOT/build/bench}
only=c,python,official
for ((i = 1; i <= $#; i++)); do
  if [ "${!i}" = --only ]; then j=$((i + 1)); only=${!j:-}; fi
  case "${!i}" in --only=*) only=${!i#--only=} ;; esac
done
want() { [[ ",$only," == *",$1,"* ]]; }
mkdir -p "$OUT"
log="$OUT/setup.log"
: > "$log"

echo "== build ($BUILD)"
# The whole tree (scripts/build.sh plain); if another engineer's in-progress files break
# it, fall back to the targets the benchmark needs.
if [ "$BUILD" = "$ROOT/build/plain" ] && JOBS=2 "$ROOT/scripts/build.sh" plain >>"$log" 2>&1; then
  :
else
  echo "   (full build failed or custom BUILD; building only the benchmark's targets; see $log)"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >>"$log" 2>&1
  cmake --build "$BUILD" --target zerobus zerobus-local zb_bench_c -j2 >>"$log" 2>&1
fi
LIB="$BUILD/src/libzerobus.so.1"

PY_OURS= PY_OFFICIAL=
if want python; then
  V="$ROOT/build/venv-bench"
  [ -x "$V/bin/python" ] || python3 -m venv "$V"
  # reinstall when the binding's sources or the library changed
  stamp=$( (cd "$ROOT" && git ls-files -s bindings/python && git diff -- bindings/python;
            sha1sum "$LIB") | sha1sum | cut -d' ' -f1)
  if [ "$(cat "$V/.bench-stamp" 2>/dev/null)" != "$stamp" ] || ! "$V/bin/python" -c "import zerobus._native" 2>/dev/null; then
    echo "== installing our binding into $V"
    if ZEROBUS_LIB="$LIB" "$V/bin/pip" install -q --force-reinstall "$ROOT/bindings/python" >>"$log" 2>&1; then
      echo "$stamp" > "$V/.bench-stamp"
    elif "$V/bin/python" -c "import zerobus._native" 2>/dev/null; then
      echo "   WARNING: installing the binding failed (tail of $log below); measuring the copy" \
           "installed before (its own bundled libzerobus), not the current sources" >&2
      tail -5 "$log" >&2
    else
      echo "installing the binding failed; see $log" >&2
      tail -20 "$log" >&2
      exit 1
    fi
  fi
  PY_OURS="$V/bin/python"
fi
if want official; then
  # a second venv: the official SDK installs the same import name (zerobus)
  V="$ROOT/build/venv-bench-official"
  [ -x "$V/bin/python" ] || python3 -m venv "$V"
  spec=databricks-zerobus-ingest-sdk${OFFICIAL_SDK_VERSION:+==$OFFICIAL_SDK_VERSION}
  if ! "$V/bin/python" -c "import zerobus._zerobus_core" 2>/dev/null || [ -n "${OFFICIAL_SDK_VERSION:-}" ]; then
    echo "== installing $spec into $V"
    "$V/bin/pip" install -q "$spec" protobuf >>"$log" 2>&1
  fi
  PY_OFFICIAL="$V/bin/python"
fi
if [ -n "$PY_OURS" ] && [ -n "$PY_OFFICIAL" ]; then
  echo "   ours: libzerobus $("$PY_OURS" -c 'import importlib.metadata as m; print(m.version("libzerobus"))')," \
       "official: databricks-zerobus-ingest-sdk $("$PY_OFFICIAL" -c 'import importlib.metadata as m; print(m.version("databricks-zerobus-ingest-sdk"))')"
fi

echo "== measuring (load average now: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores)"
exec python3 "$ROOT/bench/run_bench.py" \
  --server "$BUILD/server/zerobus-local" --c-bench "$BUILD/bench/c/zb_bench_c" \
  --py-bench "$ROOT/bench/py/bench_py.py" ${PY_OURS:+--py-ours "$PY_OURS"} \
  ${PY_OFFICIAL:+--py-official "$PY_OFFICIAL"} --out-dir "$OUT" "$@"
