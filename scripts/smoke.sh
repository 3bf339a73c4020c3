#!/usr/bin/env bash
# Proves a running reference lab works the way its users check it: a line sent
# from the client to the VIP comes back from the real, which saw the client's
# own address.
set -euo pipefail
vip=${VIP:-192.168.10.1}
port=${PORT:-50007}
client=${CLIENT:-client}

answer=$(echo "hello from the client" | timeout 20 docker exec -i "$client" nc "$vip" "$port") ||
  { echo "smoke: FAIL: docker exec $client nc $vip $port failed (is the lab up?)" >&2; exit 1; }
echo "smoke: $client -> $vip:$port answered: $answer"
if [[ "$answer" =~ ^\[.+\]\ \(\'10\.111\.220\.11\',\ [0-9]+\):\ hello\ from\ the\ client$ ]]; then
  echo "smoke: PASS"
else
  echo "smoke: FAIL: unexpected answer" >&2
  exit 1
fi
