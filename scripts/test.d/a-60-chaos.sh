#!/usr/bin/env bash
# Lane A: the chaos harness (tests/chaos/zb_chaos) with fixed seeds. Each run
# ingests from several producer threads while zerobus-local injects random
# faults (--chaos-seed), fault scripts arrive through the control endpoint and
# the server is SIGKILLed and restarted on the same ports and database; it then
# checks that every accepted record is stored or was returned (lost must be 0).
# The last run uses TLS on both sides (test CA made with openssl). About 2.5
# minutes in total. Rows for docs/RELIABILITY.md go to
# build/test-logs/chaos-report.md.
set -euo pipefail
BIN="$BUILD/tests/chaos/zb_chaos"
[ -x "$BIN" ] || { echo "missing $BIN (did the build include tests/chaos?)"; exit 1; }
REPORT="$ROOT/build/test-logs/chaos-report.md"
mkdir -p "$(dirname "$REPORT")"
: > "$REPORT"
export TMPDIR="${TMPDIR:-/tmp}"
runs=(
  "--seed 1 --duration 35 --lanes 4 --producers 2 --rate 2000 --chaos-rate 0.02 --kills 2"
  "--seed 2 --duration 35 --lanes 4 --producers 2 --rate 2000 --chaos-rate 0.05 --kills 1 --chaos-fatal"
  "--seed 3 --duration 30 --lanes 6 --producers 3 --rate 1000 --chaos-rate 0.03 --kills 3"
  "--seed 4 --duration 25 --lanes 3 --producers 2 --rate 3000 --chaos-rate 0.10 --kills 1 --no-scripts"
  "--seed 5 --duration 15 --lanes 4 --producers 2 --rate 2000 --chaos-rate 0.03 --kills 1 --tls"
)
fail=0
for args in "${runs[@]}"; do
  echo "=== zb_chaos $args"
  # shellcheck disable=SC2086
  if ! "$BIN" $args --md "$REPORT"; then
    echo "FAILED: zb_chaos $args"
    fail=1
  fi
done
echo "=== zb_chaos --selftest (the checker must catch 5 deleted rows and 1 foreign row)"
out=$("$BIN" --seed 11 --duration 4 --lanes 2 --producers 1 --rate 2000 --kills 0 --selftest 2>/dev/null || true)
echo "$out" | grep -E "^TOTAL|^RESULT"
if echo "$out" | grep -qE "^TOTAL .* lost=[1-9][0-9]* invented=1 .*acked_unstored=[1-9]" &&
   echo "$out" | grep -q "^RESULT FAIL"; then
  echo "selftest: damage detected (expected)"
else
  echo "FAILED: the chaos checker did not detect the injected damage"
  fail=1
fi
echo "--- report rows ($REPORT)"
cat "$REPORT"
exit $fail
