#!/usr/bin/env bash
# Soak: at least 10,000 short connections and a few long ones through a VIP,
# while one real is drained and re-added over and over. Every connection and
# every line on the long ones is accounted for; any loss fails the run.
#
#   scripts/soak.sh [TOPOLOGY]        (default labs/dsr-3reals.yaml; root)
#
# Environment: DSRLAB (binary, default bin/dsrlab), SHORT (10000), LONG (4),
# REAL (the real to drain, default real2), WEIGHT (its weight when re-added,
# default 1, as in the default topology), LIMIT (seconds, default 300).
set -euo pipefail
cd "$(dirname "$0")/.."
dsrlab=${DSRLAB:-bin/dsrlab}
topo=${1:-labs/dsr-3reals.yaml}
short=${SHORT:-10000}
long=${LONG:-4}
real=${REAL:-real2}
weight=${WEIGHT:-1}
limit=${LIMIT:-300}
vip=192.168.10.1:50007

name=$(sed -n 's/^name: *//p' "$topo")
prefix=$(sed -n 's/^prefix: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$topo")
"$dsrlab" up -q -t "$topo" >/dev/null
result=$(mktemp)
trap 'rm -f "$result"' EXIT

echo "soak: $short short + $long long connections to $vip in lab $name, draining $real meanwhile"
timeout "$limit" docker exec "${prefix}client" dsrlab load --target "$vip" \
  --short "$short" --long "$long" --concurrency 16 --interval 50ms >"$result" 2>&1 &
load=$!

fail() { kill "$load" 2>/dev/null; echo "soak: FAIL: $*" >&2; exit 1; }
cycles=0
while kill -0 "$load" 2>/dev/null; do
  sleep 0.5
  "$dsrlab" real drain -q --name "$name" "$vip" "$real" >/dev/null || fail "could not drain $real"
  sleep 0.5
  "$dsrlab" real add -q --name "$name" "$vip" "$real" --weight "$weight" >/dev/null || fail "could not re-add $real"
  cycles=$((cycles + 1))
done
status=0
wait "$load" || status=$?
echo "soak: $cycles drain/re-add cycles of $real during the run"
cat "$result"
if ((status != 0)); then
  echo "soak: FAIL (load exited $status: connections or lines were lost, or the ${limit}s limit passed)" >&2
  exit 1
fi
echo "soak: PASS"
