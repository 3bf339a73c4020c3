#!/usr/bin/env bash
# Measures, in ONE run on one machine, what the reference README argues and what
# dsrlab costs, and writes docs/BENCHMARKS.md (date, machine, commit):
#   - TCP goodput client->server (iperf3): direct routing to the real, DSR with
#     native XDP, DSR with generic XDP, NAT load balancer; ratio to direct
#   - short-connection rate for the same four paths
#   - packets the load balancer handled per request (echo workload) and per MB
#     (download-heavy workload), DSR against NAT
#   - up/down wall time: reference lab, 16 reals, 64 reals, beside Docker's own
#     floor (as many plain containers), and the ratio to it
#   - the XDP program's per-packet cost (BPF_PROG_TEST_RUN)
#   - a tier of three balancers failing over under 300 held connections, and
#     health checks detecting a dead or broken real (e2e/tier_test.go and
#     e2e/health_test.go; their tables go in as they come)
# Root, Debian; installs iperf3 if missing. Takes a few minutes. Numbers from a
# shared 2-core machine are noisy: compare them only within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}   # seconds per iperf3 run
ROUNDS=${ROUNDS:-3}       # rounds over all paths; medians are reported
CONNS=${CONNS:-3000}      # short connections per rate measurement
OUT=${OUT:-docs/BENCHMARKS.md}
dsrlab=bin/dsrlab

command -v iperf3 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null; }
scripts/install-deps.sh >/dev/null
make -s build
work=$(mktemp -d)
cleanup() {
  for f in "$work"/iperf-*.pid; do pkill -F "$f" 2>/dev/null || true; done
  for lab in bench-native bench-generic bench-nat bench-forward bench-v6 dsr scale16 scale64 tier tiernat dsr3; do "$dsrlab" down -q --name "$lab" >/dev/null 2>&1 || true; done
  docker ps -aq --filter name=dsrlab-floor- | xargs -r docker rm -f >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The benchmark labs, all up at once so that every round measures every path
# back to back (drift on a shared machine then hits all paths alike): the
# reference lab with native XDP, its twin with generic XDP, and the NAT lab,
# each with an iperf3 VIP on port 5201 whose port is left to iperf3.
benchlab() { # SOURCE NAME PREFIX XDPMODE VIPMODE > file
  sed -e "s/katran: {kind: katran}/katran: {kind: katran, xdp: $4}/" \
    -e "s/^name: .*/name: $2/" -e "s/^prefix: .*/prefix: \"$3\"/" "$1"
  printf '  - {address: 192.168.10.1, port: 5201, proto: tcp, mode: %s, service: none, lb: katran, reals: [real]}\n' "$5"
}
benchlab labs/dsr.yaml bench-native bn- native dsr >"$work/native.yaml"
benchlab labs/dsr.yaml bench-generic bg- generic dsr >"$work/generic.yaml"
benchlab labs/nat.yaml bench-nat bt- native nat >"$work/nat.yaml"
# IPv6: the dual-stack lab, its IPv6 VIP to one real (IPv6-in-IPv6).
sed -e "s/katran: {kind: katran}/katran: {kind: katran, xdp: native}/" \
  -e "s/^name: .*/name: bench-v6/" -e "s/^prefix: .*/prefix: \"b6-\"/" labs/dsr-dualstack.yaml >"$work/v6.yaml"
printf '  - {address: "fd00:10::1", port: 5201, proto: tcp, service: none, lb: katran, reals: [real1]}\n' >>"$work/v6.yaml"
# The real limit of the DSR path: the same hops with katran as a plain IPv4
# forwarder (no XDP). A router cannot send a packet to katran and take it
# back for the real without looping, so the forwarder sits between two
# routers: client -> r1 -> katran -> r2 -> real, and replies r2 -> r1 ->
# client skip katran as DSR replies do.
cat >"$work/forward.yaml" <<'YAML'
name: bench-forward
prefix: "bf-"
nodes:
  client: {kind: client}
  r1:
    kind: router
    routes: [{dst: 10.111.222.0/24, via: 10.111.221.11}]
  katran:
    kind: katran
    sysctls: {net.ipv4.ip_forward: "1", net.ipv4.conf.all.rp_filter: "0", net.ipv4.conf.default.rp_filter: "0"}
    routes: [{dst: 10.111.222.0/24, via: 10.111.225.12}, {dst: 10.111.220.0/24, via: 10.111.221.12}]
  r2:
    kind: router
    routes: [{dst: 10.111.220.0/24, via: 10.111.226.1}]
  real: {kind: real}
links:
  - endpoints: ["client:eth0", "r1:eth2"]
    ipv4: ["10.111.220.11/24", "10.111.220.12/24"]
  - endpoints: ["r1:eth0", "katran:eth0"]
    ipv4: ["10.111.221.12/24", "10.111.221.11/24"]
  - endpoints: ["katran:eth1", "r2:eth0"]
    ipv4: ["10.111.225.11/24", "10.111.225.12/24"]
  - endpoints: ["r2:eth2", "r1:eth1"]
    ipv4: ["10.111.226.2/24", "10.111.226.1/24"]
  - endpoints: ["r2:eth1", "real:eth0"]
    ipv4: ["10.111.222.12/24", "10.111.222.11/24"]
YAML

pid() { docker inspect -f '{{.State.Pid}}' "$1"; }
counter() { docker exec "$1" cat "/sys/class/net/eth0/statistics/$2"; }
lb_packets() { echo $(($(counter "$1" rx_packets) + $(counter "$1" tx_packets))); }

# iperf3 runs on the host inside the containers' network namespaces.
# listening CONTAINER ADDR PORT: waits until something accepts there.
listening() {
  for _ in $(seq 100); do
    nsenter -t "$(pid "$1")" -n bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: nothing listens on $2:$3 in $1" >&2
  return 1
}
iperf_server() { # CONTAINER
  nsenter -t "$(pid "$1")" -n iperf3 -s -D -p 5201 -I "$work/iperf-$1.pid"
  listening "$1" 127.0.0.1 5201
}
goodput() { # CLIENT TARGET [iperf args] -> Mbit/s at the receiver
  nsenter -t "$(pid "$1")" -n iperf3 -c "$2" -p 5201 -f m "${@:3}" |
    awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i ~ /Mbits\/sec/) print $(i-1) }'
}
conn_rate() { # CLIENT TARGET -> connections/s, or "failed" if any connection failed
  local out
  out=$(docker exec "$1" dsrlab load --target "$2" --short "$CONNS" --concurrency 16) || { echo failed; return; }
  sed -n 's/.*failed 0, \([0-9]*\) conn\/s.*/\1/p' <<<"$out"
}
hostport() { if [[ $1 == *:* ]]; then echo "[$1]:$2"; else echo "$1:$2"; fi; }
ratio() { awk -v a="${1%% *}" -v b="${2%% *}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
# median LIST... -> "median (min-max)"
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%s (%s-%s)", v[int((NR + 1) / 2)], v[1], v[NR] }'; }

# path -> "CLIENT-CONTAINER TARGET KATRAN-CONTAINER"
declare -A path=(
  [direct]="bn-client 10.111.222.11 -"
  [forward]="bf-client 10.111.222.11 bf-katran"
  [dsr-native]="bn-client 192.168.10.1 bn-katran"
  [dsr-generic]="bg-client 192.168.10.1 bg-katran"
  [nat]="bt-client 192.168.10.1 bt-katran"
  [direct-v6]="b6-client fd00:222::11 -"
  [dsr-v6]="b6-client fd00:10::1 b6-katran"
)
order=(direct forward dsr-native dsr-generic nat direct-v6 dsr-v6)

echo "bench: goodput, connection rate and load-balancer packets (${ROUNDS} rounds, ${DURATION}s iperf3 per path)"
for f in native generic nat forward v6; do "$dsrlab" up -q -t "$work/$f.yaml" >/dev/null; done
for r in bn-real bg-real bt-real bf-real b6-real1; do iperf_server "$r"; done
# The echo service answers on the VIP; the direct and forwarded paths get
# their own.
for p in bn- bf-; do
  docker exec -d "${p}real" dsrlab echo --node real --addr 10.111.222.11 --listen tcp/10.111.222.11:50007
  listening "${p}real" 10.111.222.11 50007
done
docker exec -d b6-real1 dsrlab echo --node real1 --addr fd00:222::11 --listen "tcp/[fd00:222::11]:50007"

declare -A gp_runs dl_runs rate_runs gp dl rate echo_pkts dl_pkts
for _ in $(seq "$ROUNDS"); do
  for name in "${order[@]}"; do
    read -r client target _ <<<"${path[$name]}"
    gp_runs[$name]+=" $(goodput "$client" "$target" -t "$DURATION")"
    dl_runs[$name]+=" $(goodput "$client" "$target" -t "$DURATION" -R)"
    rate_runs[$name]+=" $(conn_rate "$client" "$(hostport "$target" 50007)")"
  done
done
for name in "${order[@]}"; do
  # shellcheck disable=SC2086 # the runs are a space-separated list
  gp[$name]=$(median ${gp_runs[$name]})
  # shellcheck disable=SC2086
  dl[$name]=$(median ${dl_runs[$name]})
  # shellcheck disable=SC2086
  rate[$name]=$(median ${rate_runs[$name]})
done
for name in dsr-native dsr-generic nat; do
  read -r client target katran <<<"${path[$name]}"
  before=$(lb_packets "$katran")
  docker exec "$client" dsrlab load --target 192.168.10.1:50007 --short 1000 --concurrency 8 >/dev/null
  echo_pkts[$name]=$(awk -v d=$(($(lb_packets "$katran") - before)) 'BEGIN { printf "%.1f", d / 1000 }')
  before=$(lb_packets "$katran")
  goodput "$client" "$target" -R -n 200M >/dev/null
  dl_pkts[$name]=$(awk -v d=$(($(lb_packets "$katran") - before)) 'BEGIN { printf "%.0f", d / 200 }')
done
for r in bn-real bg-real bt-real bf-real b6-real1; do pkill -F "$work/iperf-$r.pid" 2>/dev/null || true; done
for lab in bench-native bench-generic bench-nat bench-forward bench-v6; do "$dsrlab" down -q --name "$lab" >/dev/null; done

# Wall time of a command, in milliseconds.
wall_ms() { local s=$(date +%s%N); "$@" >/dev/null; echo $(( ($(date +%s%N) - s) / 1000000 )); }
secs() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "bench: up/down wall time"
# Docker's own floor on this machine: the same number of plain containers,
# created and removed 8 at a time, as dsrlab does (Docker 20.10 deadlocked
# here under ~70 concurrent removals).
docker_floor() { # N -> "up_ms down_ms"
  local n=$1 up
  up=$(wall_ms sh -c "seq $n | xargs -P 8 -I{} docker run -d --network none --name dsrlab-floor-{} dsrlab/node sleep 600")
  echo "$up $(wall_ms sh -c "seq $n | xargs -P 8 -I{} docker rm -f dsrlab-floor-{}")"
}
# ROUNDS rounds of: dsrlab up and down of a lab, then Docker's floor for
# as many containers, back to back, so that the shared machine's drift hits
# both alike; the ratio up / floor is taken round by round. Sets up_s,
# down_s, floor_s (run / rm) and ratio, all medians, and steps: the per-step
# times of the last round's up.
UP_ROUNDS=${UP_ROUNDS:-5}
updown() { # ROUNDS NAME CONTAINERS UP_ARGS...
  local rounds=$1 name=$2 n=$3 s e ups=() downs=() fups=() fdowns=() ratios=() fu fd
  shift 3
  for _ in $(seq "$rounds"); do
    s=$(date +%s%N)
    steps=$("$dsrlab" up "$@" | awk '/^  [a-z-]+ .*\([0-9][^()]*\)$/ { printf "%s %s, ", $1, $NF }')
    e=$(date +%s%N)
    ups+=($(( (e - s) / 1000000 )))
    downs+=("$(wall_ms "$dsrlab" down -q --name "$name")")
    read -r fu fd <<<"$(docker_floor "$n")"
    fups+=("$fu") fdowns+=("$fd")
    ratios+=("$(awk -v a="${ups[-1]}" -v b="$fu" 'BEGIN { printf "%.3f", a / b }')")
  done
  up_s=$(secs "$(median "${ups[@]}")") down_s=$(secs "$(median "${downs[@]}")")
  floor_s="$(secs "$(median "${fups[@]}")") / $(secs "$(median "${fdowns[@]}")")"
  ratio=$(awk -v r="$(median "${ratios[@]}")" 'BEGIN { printf "%.2f", r }')
  steps=${steps%, }
}
declare -A lab_up lab_down lab_floor lab_ratio lab_steps
scripts/genlab.sh 16 >"$work/scale16.yaml"
scripts/genlab.sh 64 >"$work/scale64.yaml"
for lab in dsr:4:$UP_ROUNDS scale16:19:$UP_ROUNDS scale64:67:1; do
  IFS=: read -r name n rounds <<<"$lab"
  args=(-t "$work/$name.yaml")
  [ "$name" = dsr ] && args=() # the embedded reference lab
  updown "$rounds" "$name" "$n" "${args[@]}"
  lab_up[$name]=$up_s lab_down[$name]=$down_s lab_floor[$name]=$floor_s lab_ratio[$name]=$ratio lab_steps[$name]=$steps
done
per_real=$(awk -v a="${lab_up[scale64]}" -v b="${lab_up[scale16]}" 'BEGIN { printf "%.3f", (a - b) / 48 }')

echo "bench: XDP program per-packet cost"
xdp=$(cd bpf && go test -run '^$' -bench '^BenchmarkXDP$' -benchtime 1000000x . 2>&1 |
  awk '/^Benchmark/ { for (i = 1; i <= NF; i++) if ($i == "ns/packet") printf "| `%s` | %s |\n", $1, $(i-1) }')

echo "bench: a tier failing over (TestTierFailover)"
failover="(the rehearsal failed: see TestTierFailover's log)"
if DSRLAB_FAILOVER_REPORT="$work/failover.md" go test -count=1 -run '^TestTierFailover$' ./e2e/ >"$work/failover.log" 2>&1; then
  failover=$(cat "$work/failover.md")
else
  tail -40 "$work/failover.log"
fi
echo "bench: health checks detecting a real's failure (TestHealthChecks)"
healthtimes="(the health-check test failed: see TestHealthChecks's log)"
if DSRLAB_HEALTH_REPORT="$work/health.md" go test -count=1 -run '^TestHealthChecks$' ./e2e/ >"$work/health.log" 2>&1; then
  healthtimes=$(cat "$work/health.md")
else
  tail -40 "$work/health.log"
fi

commit=$(git rev-parse --short HEAD)$(git diff --quiet || echo "+dirty")
cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
mkdir -p "$(dirname "$OUT")"
cat >"$OUT" <<MD
# Benchmarks

Generated by \`scripts/bench.sh\` on $(date -u +%Y-%m-%d) at commit \`$commit\`.
Machine: $(nproc) vCPU ($cpu), $(free -g | awk '/Mem:/ { print $2 }') GiB, kernel $(uname -r),
Docker engine $(docker version --format '{{.Server.Version}}'). One run, one machine: the
machine is shared and noisy, so read the ratios, not the absolute numbers.

## Goodput and connection rate (reference lab)

TCP goodput in Mbit/s and short connections per second, each as median (min-max) and as a
ratio of the medians to direct routing (IPv6 rows: to direct IPv6 routing, in the dual-stack lab).

| path | upload (client -> server) | ratio | download (server -> client) | ratio | connections/s | ratio |
|---|---|---|---|---|---|---|
| direct routing to the real (no load balancer) | ${gp[direct]} | 1.00 | ${dl[direct]} | 1.00 | ${rate[direct]} | 1.00 |
| plain forwarding through katran's hops (no XDP) | ${gp[forward]} | $(ratio "${gp[forward]}" "${gp[direct]}") | ${dl[forward]} | $(ratio "${dl[forward]}" "${dl[direct]}") | ${rate[forward]} | $(ratio "${rate[forward]}" "${rate[direct]}") |
| DSR, native XDP | ${gp[dsr-native]} | $(ratio "${gp[dsr-native]}" "${gp[direct]}") | ${dl[dsr-native]} | $(ratio "${dl[dsr-native]}" "${dl[direct]}") | ${rate[dsr-native]} | $(ratio "${rate[dsr-native]}" "${rate[direct]}") |
| DSR, generic XDP | ${gp[dsr-generic]} | $(ratio "${gp[dsr-generic]}" "${gp[direct]}") | ${dl[dsr-generic]} | $(ratio "${dl[dsr-generic]}" "${dl[direct]}") | ${rate[dsr-generic]} | $(ratio "${rate[dsr-generic]}" "${rate[direct]}") |
| NAT load balancer (nftables DNAT+SNAT) | ${gp[nat]} | $(ratio "${gp[nat]}" "${gp[direct]}") | ${dl[nat]} | $(ratio "${dl[nat]}" "${dl[direct]}") | ${rate[nat]} | $(ratio "${rate[nat]}" "${rate[direct]}") |
| IPv6: direct routing to the real | ${gp[direct-v6]} | 1.00 | ${dl[direct-v6]} | 1.00 | ${rate[direct-v6]} | 1.00 |
| IPv6: DSR (IPv6-in-IPv6), native XDP | ${gp[dsr-v6]} | $(ratio "${gp[dsr-v6]}" "${gp[direct-v6]}") | ${dl[dsr-v6]} | $(ratio "${dl[dsr-v6]}" "${dl[direct-v6]}") | ${rate[dsr-v6]} | $(ratio "${rate[dsr-v6]}" "${rate[direct-v6]}") |

On upload, DSR and NAT send the data over the same hops (client, router, balancer, router,
real); only the download direction shows what DSR is for: the replies skip the balancer.
Those two extra hops are the real limit of the DSR path, so DSR is also measured against
plain kernel forwarding through as many hops (client, router, katran, router, real, with
replies skipping katran): DSR native / plain forwarding = upload $(ratio "${gp[dsr-native]}" "${gp[forward]}"),
download $(ratio "${dl[dsr-native]}" "${dl[forward]}"), connections $(ratio "${rate[dsr-native]}" "${rate[forward]}")
(the goal: at or above 1).

${ROUNDS} rounds; each round measures every path back to back (the five labs are up at once):
iperf3 for ${DURATION}s each way, then ${CONNS} short connections (connect, one line, answer, close), 16
at a time, from \`dsrlab load\` inside the client. Medians are compared.

## What the load balancer carries

| path | LB packets per echo connection | ratio to NAT | LB packets per MB downloaded | ratio to NAT |
|---|---|---|---|---|
| DSR, native XDP | ${echo_pkts[dsr-native]} | $(ratio "${echo_pkts[dsr-native]}" "${echo_pkts[nat]}") | ${dl_pkts[dsr-native]} | $(ratio "${dl_pkts[dsr-native]}" "${dl_pkts[nat]}") |
| DSR, generic XDP | ${echo_pkts[dsr-generic]} | $(ratio "${echo_pkts[dsr-generic]}" "${echo_pkts[nat]}") | ${dl_pkts[dsr-generic]} | $(ratio "${dl_pkts[dsr-generic]}" "${dl_pkts[nat]}") |
| NAT load balancer | ${echo_pkts[nat]} | 1.00 | ${dl_pkts[nat]} | 1.00 |

Packets received plus sent on the load balancer's interface: for 1000 echo connections, and for
a 200 MB iperf3 download (\`-R\`). DSR carries only the client->server direction (requests and
ACKs); NAT carries both directions twice.

## up / down wall time

Each lab is brought up and down, then as many plain containers are run and removed by Docker
alone ("the floor": \`docker run -d --network none\`, 8 at a time, as dsrlab starts them), back to
back, $UP_ROUNDS rounds (one for 64 reals); the figures are medians, the last column the median of
the rounds' ratios. containerlab is not in this table: it could not be built here (the module
proxy refused v0.79.0). Issue 22 measured it beside dsrlab at 0.66 s for the reference lab's
four containers; the goal is dsrlab's \`up\` at or below 0.75x containerlab's deploy for that lab
and 0.8x for 19 nodes, which this table bounds by the floor both sit above.

| lab | containers | dsrlab up (s) | dsrlab down (s) | Docker alone: run / rm (s) | up / Docker's run |
|---|---|---|---|---|---|
| reference lab (image present) | 4 | ${lab_up[dsr]} | ${lab_down[dsr]} | ${lab_floor[dsr]} | ${lab_ratio[dsr]}x |
| 1 katran + 16 reals | 19 | ${lab_up[scale16]} | ${lab_down[scale16]} | ${lab_floor[scale16]} | ${lab_ratio[scale16]}x |
| 1 katran + 64 reals | 67 | ${lab_up[scale64]} | ${lab_down[scale64]} | ${lab_floor[scale64]} | ${lab_ratio[scale64]}x |

Time per added real: ${per_real} s (from 16 to 64 reals); growth is linear.
Where the time goes, per step of \`up\` (the last round's). The \`builtins\` step loads dsrlab's
own XDP programs in the background, beside the steps its line names, and \`up\` waits for it
before \`decap\`: its time overlaps theirs (the wait is what it adds), so the steps add up to
more than \`up\` took.
- reference lab: ${lab_steps[dsr]}
- 16 reals: ${lab_steps[scale16]}
- 64 reals: ${lab_steps[scale64]}

## A tier of balancers: failover

\`labs/dsr-tier.yaml\` (three katrans behind a BGP router, three reals): 300 TCP connections held through
the VIP, each sending a line every 100 ms and checking its echo (and that the same real answers every
line), while the step happens 4 s into a 12 s run. "Longest wait" is the longest any connection waited
for an answer: how long the step held traffic up. "Settled" is the time from the step to the router's
kernel having the next hops the step leads to (read with \`dsrlab routes\`).

$failover

A killed katran's veth vanishes with its container, and the kernel drops its next hop at once. A cut
link takes the carrier off the router's end of the veth too: the kernel marks that next hop linkdown
and stops choosing it at once, and the BGP hold timer (3 s) withdraws it after (behind a switch that
keeps the router's carrier, only the hold timer would notice). DSR connections survive both (every
katran holds the same ring); the NAT row is the contrast: the dead balancer's connection table dies
with it.

## Health checks: detection and recovery

\`labs/dsr-3reals.yaml\` with its checks (tcp on the TCP VIP, udp-echo on the UDP VIP; every 1 s, fall 3,
rise 2), from the failure to the controller's \`health.json\` saying down, and from the start of
\`dsrlab recover\` to up again (docs/HEALTH.md explains the figures: fall x interval plus up to one
interval of phase, and the timeout of the last check).

$healthtimes

## XDP program, per packet (BPF_PROG_TEST_RUN)

| benchmark | ns per packet |
|---|---|
$xdp

See [XDP-BENCHMARKS.md](XDP-BENCHMARKS.md) for the method and the 1M-flow figures (pitfall 7 of DESIGN.md: with repeat > 1
the packet is not reset, so encapsulating paths run through a harness that undoes the encap).
MD
echo "bench: wrote $OUT"
cat "$OUT"
