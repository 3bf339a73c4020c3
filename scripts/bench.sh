#!/usr/bin/env bash
# Measures, in ONE run on one machine, what the reference README argues and what
# dsrlab costs, and writes docs/BENCHMARKS.md (date, machine, commit):
#   - TCP goodput client->server (iperf3): direct routing to the real, plain
#     forwarding through katran's hops (as is, and carrying the frames an XDP
#     path carries), DSR with native XDP, DSR with generic XDP, NAT load
#     balancer; ratio to direct, and frames per MB at katran and at the real
#   - short-connection rate for the same paths
#   - packets the load balancer handled per request (echo workload) and per MB
#     (download-heavy workload), DSR against NAT
#   - up/down wall time: reference lab, 16 reals, 64 reals, beside
#     containerlab's deploy of the same containers and links (containerlab
#     built here from the Go module proxy) and Docker's own floor (as many
#     plain containers), and the ratios to them
#   - the XDP program's per-packet cost (BPF_PROG_TEST_RUN)
#   - a tier of three balancers failing over under 300 held connections, and
#     health checks detecting a dead or broken real (e2e/tier_test.go and
#     e2e/health_test.go; their tables go in as they come)
# Root, Debian; installs iperf3 and ethtool if missing. Takes a few minutes.
# Numbers from a shared 2-core machine are noisy: compare them only within one
# run. ONLY=goodput measures the first two tables alone, ONLY=updown the up /
# down section alone, and puts them in place in the existing $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}   # seconds per iperf3 run
ROUNDS=${ROUNDS:-3}       # rounds over all paths; medians are reported
CONNS=${CONNS:-3000}      # short connections per rate measurement
OUT=${OUT:-docs/BENCHMARKS.md}
ONLY=${ONLY:-}            # "goodput" or "updown": that section only
MB=200                    # MiB per counted transfer (iperf3 -n)
dsrlab=bin/dsrlab

case $ONLY in "" | goodput | updown) ;; *) echo "bench: ONLY=$ONLY: the sections that run alone are goodput and updown" >&2; exit 2 ;; esac
for tool in iperf3 ethtool; do
  command -v "$tool" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null; }
done
scripts/install-deps.sh >/dev/null
make -s build
work=$(mktemp -d)
cleanup() {
  for f in "$work"/iperf-*.pid; do pkill -F "$f" 2>/dev/null || true; done
  for lab in bench-native bench-generic bench-nat bench-forward bench-forward-xdp bench-forward-nooffload bench-forward-tso bench-v6 dsr scale16 scale64 tier tiernat dsr3; do "$dsrlab" down -q --name "$lab" >/dev/null 2>&1 || true; done
  docker ps -aq --filter name=dsrlab-floor- | xargs -r docker rm -f >/dev/null
  if [ -n "${clab:-}" ]; then
    for t in "$work"/*.clab.yml; do (cd "$work" && CLAB_VERSION_CHECK=disable "$clab" destroy --cleanup -t "$t" >/dev/null 2>&1) || true; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
commit=$(git rev-parse --short HEAD)$(git diff --quiet || echo "+dirty")

# ---- up / down wall time: dsrlab beside containerlab and Docker alone ----

# wall_ms CMD...: its wall time in ms; fails when it does, and then takes the
# bench down with it wherever its output is assigned on its own.
wall_ms() { local s=$(date +%s%N); "$@" >/dev/null || return; echo $(( ($(date +%s%N) - s) / 1000000 )); }
secs() { awk -v m="$1" 'BEGIN { printf "%.2f", m / 1000 }'; }
median_of() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# at_most RATIO MAX -> "met" or "**not met**"
at_most() { awk -v r="$1" -v m="$2" 'BEGIN { print (r <= m ? "met" : "**not met**") }'; }

# containerlab (CLAB_VERSION), the tool dsrlab's up is held against. It has no
# Debian package: it is built from the Go module proxy into $work, with one
# change this kernel needs: the kernel has no loadable modules and so no
# /proc/modules, which deploy reads (looking for ip_tables) before anything
# else and fails on. The build reads a missing file as "module not loaded",
# after which containerlab goes on as it does on a host without modules.dep:
# it takes the module as built in. Sets clab, or clab_why.
CLAB_VERSION=${CLAB_VERSION:-v0.79.0}
clab="" clab_why=""
build_containerlab() {
  local dir src=$work/clabsrc mod=github.com/srl-labs/containerlab
  dir=$(cd "$work" && go mod download -json "$mod@$CLAB_VERSION" 2>/dev/null | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || true
  if [ -z "$dir" ]; then clab_why="the Go module proxy did not serve $mod@$CLAB_VERSION"; return; fi
  if [ ! -f "$dir/utils/kernel_module.go" ]; then
    clab_why="containerlab $CLAB_VERSION has no utils/kernel_module.go, whose /proc/modules read this script changes"; return
  fi
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  sed -i 's|^\tf, err := os.Open("/proc/modules")$|&\n\tif os.IsNotExist(err) {\n\t\treturn false, nil\n\t}|' "$src/utils/kernel_module.go"
  if ! grep -A1 -F 'os.Open("/proc/modules")' "$src/utils/kernel_module.go" | grep -q IsNotExist; then
    clab_why="containerlab $CLAB_VERSION reads /proc/modules in a way this script does not know how to change"; return
  fi
  if ! (cd "$src" && go build -o "$work/containerlab" .) >"$work/clab-build.log" 2>&1; then
    clab_why="containerlab $CLAB_VERSION did not build: $(tail -1 "$work/clab-build.log")"; return
  fi
  clab=$work/containerlab
}
# clabtwin TOPOLOGY [mgmt] > file: the containerlab twin of a dsrlab lab
# written in the inline style of labs/ and scripts/genlab.sh: the same nodes,
# links and interface names, on the same image, unprivileged (privileged
# containers cannot start here) and, like dsrlab's nodes, without Docker
# networking; with mgmt, containerlab's default management network instead,
# which takes eth0 (the twin's ethN are then eth(N+1)). Its firewall rules
# stay off either way (there is no ip_tables here).
clabtwin() {
  awk -v mgmt="${2:-}" '
    /^name:/ {
      print "name: " $2 "\nmgmt: {external-access: false}\ntopology:"
      print "  defaults: {kind: linux, image: dsrlab/node, privileged: false" (mgmt ? "" : ", network-mode: none") "}\n  nodes:"
      next
    }
    /^nodes:/ { sect = "nodes"; next }
    /^links:/ { sect = "links"; print "  links:"; next }
    /^[a-z]/ { sect = "" }
    sect == "nodes" && /^  [a-z0-9_-]+:/ { sub(/:.*/, ""); print "  " $0 ": {}" }
    sect == "links" && /^  - endpoints:/ {
      line = $0; out = ""
      while (mgmt && match(line, /:eth[0-9]+"/)) {
        out = out substr(line, 1, RSTART) "eth" (substr(line, RSTART + 4, RLENGTH - 5) + 1) "\""
        line = substr(line, RSTART + RLENGTH)
      }
      print "  " out line
    }' "$1"
}
# containerlab writes its lab directory where it runs, and /etc/hosts
# entries that destroy removes again.
clab_do() { (cd "$work" && CLAB_VERSION_CHECK=disable "$clab" "$@" >>"$work/clab.log" 2>&1) || { tail -20 "$work/clab.log" >&2; return 1; }; }
# Docker's own floor on this machine: the same number of plain containers,
# created and removed 8 at a time, as dsrlab does (Docker 20.10 deadlocked
# here under ~70 concurrent removals).
docker_floor() { # N: sets fu and fd, the ms to run and to remove them
  fu=$(wall_ms sh -c "seq $1 | xargs -P 8 -I{} docker run -d --network none --name dsrlab-floor-{} dsrlab/node sleep 600")
  fd=$(wall_ms sh -c "seq $1 | xargs -P 8 -I{} docker rm -f dsrlab-floor-{}")
}
# ROUNDS rounds of: dsrlab up and down of a lab, containerlab's deploy and
# destroy of its twin, then Docker's floor for as many containers, back to
# back, so that the shared machine's drift hits all three alike; ratios are
# taken round by round. Sets up_s, down_s, clab_s, floor_s (each "up /
# down"), clab_ratio and floor_ratio (up's), floor_clab (the floor's to
# containerlab's deploy; all medians of the rounds' ratios) and steps: the
# per-step times of the last round's up.
UP_ROUNDS=${UP_ROUNDS:-5}
updown() { # ROUNDS NAME CONTAINERS TWIN UP_ARGS...
  local rounds=$1 name=$2 n=$3 twin=$4 s e up ups=() downs=() cups=() cdowns=() fups=() fdowns=() cr=() fr=() fc=() fu fd
  shift 4
  for _ in $(seq "$rounds"); do
    s=$(date +%s%N)
    steps=$("$dsrlab" up "$@" | awk '/^  [a-z-]+ .*\([0-9][^()]*\)$/ && $NF != "(0s)" { printf "%s %s, ", $1, $NF }')
    e=$(date +%s%N)
    up=$(( (e - s) / 1000000 ))
    ups+=("$up")
    downs+=("$(wall_ms "$dsrlab" down -q --name "$name")")
    if [ -n "$clab" ]; then
      cups+=("$(wall_ms clab_do deploy -t "$twin")")
      cdowns+=("$(wall_ms clab_do destroy --cleanup -t "$twin")")
      cr+=("$(awk -v a="$up" -v b="${cups[-1]}" 'BEGIN { printf "%.3f", a / b }')")
    fi
    docker_floor "$n"
    fups+=("$fu") fdowns+=("$fd")
    fr+=("$(awk -v a="$up" -v b="$fu" 'BEGIN { printf "%.3f", a / b }')")
    [ -z "$clab" ] || fc+=("$(awk -v a="$fu" -v b="${cups[-1]}" 'BEGIN { printf "%.3f", a / b }')")
  done
  up_s=$(secs "$(median_of "${ups[@]}")") down_s=$(secs "$(median_of "${downs[@]}")")
  floor_s="$(secs "$(median_of "${fups[@]}")") / $(secs "$(median_of "${fdowns[@]}")")"
  floor_ratio=$(awk -v r="$(median_of "${fr[@]}")" 'BEGIN { printf "%.2f", r }')
  clab_s=- clab_ratio=- floor_clab=-
  if [ -n "$clab" ]; then
    clab_s="$(secs "$(median_of "${cups[@]}")") / $(secs "$(median_of "${cdowns[@]}")")"
    clab_ratio=$(median_of "${cr[@]}")
    floor_clab=$(awk -v r="$(median_of "${fc[@]}")" 'BEGIN { printf "%.2f", r }')
  fi
  steps=${steps%, }
}
# measure_updown sets updown_md, the up / down section.
measure_updown() {
  echo "bench: up/down wall time"
  build_containerlab
  [ -n "$clab" ] || echo "bench: no containerlab in the up/down table: $clab_why" >&2
  declare -gA lab_up lab_down lab_clab lab_floor lab_cratio lab_fratio lab_fc lab_steps lab_mgmt
  scripts/genlab.sh 16 >"$work/scale16.yaml"
  scripts/genlab.sh 64 >"$work/scale64.yaml"
  cp labs/dsr.yaml "$work/dsr.yaml"
  # Not counted: the first up after a build builds the node image, and each
  # tool's first run reads its binary from disk.
  "$dsrlab" up -q >/dev/null
  "$dsrlab" down -q >/dev/null
  if [ -n "$clab" ]; then
    clabtwin "$work/dsr.yaml" >"$work/warmup.clab.yml"
    clab_do deploy -t "$work/warmup.clab.yml"
    clab_do destroy --cleanup -t "$work/warmup.clab.yml"
  fi
  local lab name n rounds args ms
  for lab in dsr:4:$UP_ROUNDS scale16:19:$UP_ROUNDS scale64:67:1; do
    IFS=: read -r name n rounds <<<"$lab"
    clabtwin "$work/$name.yaml" >"$work/$name.clab.yml"
    clabtwin "$work/$name.yaml" mgmt >"$work/$name-mgmt.clab.yml"
    args=(-t "$work/$name.yaml")
    [ "$name" = dsr ] && args=() # the embedded reference lab
    updown "$rounds" "$name" "$n" "$work/$name.clab.yml" "${args[@]}"
    lab_up[$name]=$up_s lab_down[$name]=$down_s lab_clab[$name]=$clab_s lab_floor[$name]=$floor_s
    lab_cratio[$name]=$clab_ratio lab_fratio[$name]=$floor_ratio lab_fc[$name]=$floor_clab lab_steps[$name]=$steps lab_mgmt[$name]=-
    if [ -n "$clab" ]; then
      ms=$(wall_ms clab_do deploy -t "$work/$name-mgmt.clab.yml")
      lab_mgmt[$name]=$(secs "$ms")
      clab_do destroy --cleanup -t "$work/$name-mgmt.clab.yml"
    fi
  done
  local per_real clab_note goals=""
  per_real=$(awk -v a="${lab_up[scale64]}" -v b="${lab_up[scale16]}" 'BEGIN { printf "%.3f", (a - b) / 48 }')
  if [ -n "$clab" ]; then
    clab_note="containerlab is $CLAB_VERSION, built by the bench from the Go module proxy with the one
change this kernel needs (it has no \`/proc/modules\`, which deploy reads first: see
\`build_containerlab\` in the script), deploying each lab's twin: the same nodes, links and
interface names, on the same image, unprivileged, and like dsrlab's nodes without Docker
networking (\`network-mode: none\`). Its default deploy also makes and attaches a management
network, which dsrlab's nodes do not have; that deploy took ${lab_mgmt[dsr]} s for the reference
lab, ${lab_mgmt[scale16]} s for 19 containers and ${lab_mgmt[scale64]} s for 67 in this run (one round each)."
    goals="
| goal | measured (up / containerlab's deploy) | |
|---|---|---|
| the reference lab's \`up\` <= 0.75x containerlab's deploy | ${lab_cratio[dsr]} | $(at_most "${lab_cratio[dsr]}" 0.75) |
| 19 containers' \`up\` <= 0.8x containerlab's deploy | ${lab_cratio[scale16]} | $(at_most "${lab_cratio[scale16]}" 0.8) |

Both tools spend most of their time waiting for the engine to start the containers: Docker's own
\`docker run\` of as many containers (the floor) took ${lab_fc[dsr]}x containerlab's deploy for 4
containers, ${lab_fc[scale16]}x for 19 and ${lab_fc[scale64]}x for 67 in the same rounds, so what
decides the goals is what each tool adds to the engine's time (dsrlab's: the last column).
"
  else
    clab_note="containerlab is not in this table: $clab_why."
  fi
  local stamp=""
  [[ $ONLY == updown ]] && stamp="
This section was measured again, alone (\`ONLY=updown scripts/bench.sh\`), on $(date -u +%Y-%m-%d) at
commit \`$commit\`; the rest of this page is from the run named at the top.
"
  updown_md=$(cat <<MD
## up / down wall time
$stamp
Each lab is brought up and down by dsrlab, its twin deployed and destroyed by containerlab, then as
many plain containers are run and removed by Docker alone ("the floor": \`docker run -d --network
none\`, 8 at a time, as dsrlab starts them), back to back, $UP_ROUNDS rounds (one for 64 reals);
the figures are medians, the ratios medians of the rounds' ratios (they hold when the shared
machine's speed drifts). $clab_note

| lab | containers | dsrlab up (s) | dsrlab down (s) | containerlab deploy / destroy (s) | Docker alone: run / rm (s) | up / containerlab's deploy | up / Docker's run |
|---|---|---|---|---|---|---|---|
| reference lab (image present) | 4 | ${lab_up[dsr]} | ${lab_down[dsr]} | ${lab_clab[dsr]} | ${lab_floor[dsr]} | ${lab_cratio[dsr]} | ${lab_fratio[dsr]}x |
| 1 katran + 16 reals | 19 | ${lab_up[scale16]} | ${lab_down[scale16]} | ${lab_clab[scale16]} | ${lab_floor[scale16]} | ${lab_cratio[scale16]} | ${lab_fratio[scale16]}x |
| 1 katran + 64 reals | 67 | ${lab_up[scale64]} | ${lab_down[scale64]} | ${lab_clab[scale64]} | ${lab_floor[scale64]} | ${lab_cratio[scale64]} | ${lab_fratio[scale64]}x |
$goals
Time per added real: ${per_real} s (from 16 to 64 reals).
Where the time goes, per step of \`up\` (the last round's; steps that took 0 s left out). The
\`builtins\` step loads dsrlab's own XDP programs in the background, beside the steps from
\`images\` to \`addressing\`, and \`up\` waits for it before \`decap\`: its time overlaps theirs,
so the steps add up to more than \`up\` took.
- reference lab: ${lab_steps[dsr]}
- 16 reals: ${lab_steps[scale16]}
- 64 reals: ${lab_steps[scale64]}

What dsrlab adds to the engine's time is mostly the kernel's. Each attach of an XDP program not yet
attached anywhere takes 10-19 ms here, whatever the program, and such attaches wait for each other
(most likely the kernel's XDP dispatcher, rebuilt for each new program); attaching one already
attached elsewhere takes 0.1 ms. The reference lab makes three (the real's decap, the router's
XDP_PASS stub, the balancer), and each real's decap program is its own program (its own addresses
and counters), so \`decap\` is one such attach per real. And the balancer's load, about 0.2 s of
CPU (a third of it creating the per-CPU connection table, the rest verifying), runs beside the
containers on a 2-CPU machine: at the lowest CPU priority, it still slows the engine's starts.
MD
)
}
# replace_section FROM_HEADING NEXT_HEADING TEXT: in place in $OUT, from the
# heading to the next one that this run did not measure.
replace_section() {
  grep -q "^## $1" "$OUT" && grep -q "^## $2" "$OUT" ||
    { echo "bench: $OUT has no '## $1' section before '## $2' to replace; run the whole bench" >&2; exit 1; }
  printf '%s\n\n' "$3" >"$work/section.md"
  awk -v md="$work/section.md" -v from="^## $1" -v to="^## $2" '
    $0 ~ from { while ((getline l < md) > 0) print l; skip = 1; next }
    $0 ~ to { skip = 0 }
    !skip' "$OUT" >"$work/out.md"
  cp "$work/out.md" "$OUT"
}
if [[ $ONLY == updown ]]; then
  measure_updown
  replace_section "up / down" "A tier" "$updown_md"
  echo "bench: replaced the up / down section in $OUT"
  echo "$updown_md"
  exit 0
fi

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
# Plain forwarding through the DSR path's hops, with katran as an IPv4
# forwarder (no balancer). A router cannot send a packet to katran and take
# it back for the real without looping, so the forwarder sits between two
# routers: client -> r1 -> katran -> r2 -> real, and replies r2 -> r1 ->
# client skip katran as DSR replies do.
# forwardlab NAME PREFIX [xdp]: with xdp, an XDP_PASS program (the stub dsrlab
# puts on veth peers) on every veth end that has native XDP in the DSR lab:
# katran's uplink (the balancer), the end that takes katran's frames on
# (the router's stub; here r2's) and the real's (the decap). Those ends then
# take frames the way the DSR path's do (TSO off on their peers; a ring and
# a copy per frame), and only the balancer's own work is left out.
forwardlab() {
  local pass=""
  [[ ${3:-} == xdp ]] && pass="xdp: native, program: {object: $PWD/bpf/pass_bpfel.o, interface: eth0}"
  cat <<YAML
name: $1
prefix: "$2"
nodes:
  client: {kind: client}
  r1: {kind: router, routes: [{dst: 10.111.222.0/24, via: 10.111.221.11}]}
  katran: {kind: katran, ${pass:+$pass, }
    sysctls: {net.ipv4.ip_forward: "1", net.ipv4.conf.all.rp_filter: "0", net.ipv4.conf.default.rp_filter: "0"},
    routes: [{dst: 10.111.222.0/24, via: 10.111.225.12}, {dst: 10.111.220.0/24, via: 10.111.221.12}]}
  r2: {kind: router, ${pass:+$pass, }routes: [{dst: 10.111.220.0/24, via: 10.111.226.1}]}
  real: {kind: real${pass:+, $pass}}
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
}
forwardlab bench-forward bf- >"$work/forward.yaml"
forwardlab bench-forward-xdp bx- xdp >"$work/forward-xdp.yaml"
forwardlab bench-forward-nooffload bo- >"$work/forward-nooffload.yaml"
forwardlab bench-forward-tso bs- >"$work/forward-tso.yaml"
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
iperf() { nsenter -t "$(pid "$1")" -n iperf3 -c "$2" -p 5201 -f m "${@:3}"; } # CLIENT TARGET [iperf args]
goodput() { # CLIENT TARGET [iperf args] -> Mbit/s at the receiver
  iperf "$@" | awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i ~ /Mbits\/sec/) print $(i-1) }'
}
retransmits() { # CLIENT TARGET [iperf args] -> segments the sender sent again
  iperf "$@" | awk '/sender/ { for (i = 1; i <= NF; i++) if ($i ~ /Mbits\/sec/) print $(i+1) }'
}
conn_rate() { # CLIENT TARGET -> connections/s, or "failed" if any connection failed
  local out
  out=$(docker exec "$1" dsrlab load --target "$2" --short "$CONNS" --concurrency 16) || { echo failed; return; }
  sed -n 's/.*failed 0, \([0-9]*\) conn\/s.*/\1/p' <<<"$out"
}
hostport() { if [[ $1 == *:* ]]; then echo "[$1]:$2"; else echo "$1:$2"; fi; }
ratio() { awk -v a="${1%% *}" -v b="${2%% *}" -v d="${3:-2}" 'BEGIN { if (b > 0) printf "%.*f", d, a / b; else print "-" }'; } # A B [DIGITS]
# median LIST... -> "median (min-max)"
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%s (%s-%s)", v[int((NR + 1) / 2)], v[1], v[NR] }'; }

# path -> "CLIENT-CONTAINER TARGET KATRAN-CONTAINER REAL-CONTAINER"
declare -A path=(
  [direct]="bn-client 10.111.222.11 - bn-real"
  [forward]="bf-client 10.111.222.11 bf-katran bf-real"
  [forward-xdp]="bx-client 10.111.222.11 bx-katran bx-real"
  [forward-nooffload]="bo-client 10.111.222.11 bo-katran bo-real"
  [forward-tso]="bs-client 10.111.222.11 bs-katran bs-real"
  [dsr-native]="bn-client 192.168.10.1 bn-katran bn-real"
  [dsr-generic]="bg-client 192.168.10.1 bg-katran bg-real"
  [nat]="bt-client 192.168.10.1 bt-katran bt-real"
  [direct-v6]="b6-client fd00:222::11 - b6-real1"
  [dsr-v6]="b6-client fd00:10::1 b6-katran b6-real1"
)
order=(direct forward forward-xdp forward-nooffload forward-tso dsr-native dsr-generic nat direct-v6 dsr-v6)
labs=(native generic nat forward forward-xdp forward-nooffload forward-tso v6)
reals=(bn-real bg-real bt-real bf-real bx-real bo-real bs-real b6-real1)

echo "bench: goodput, connection rate and load-balancer packets (${ROUNDS} rounds, ${DURATION}s iperf3 per path)"
for f in "${labs[@]}"; do "$dsrlab" up -q -t "$work/$f.yaml" >/dev/null; done
# lab_ethtool PREFIX ENDS ARGS...: ethtool -K ARGS on each NODE:IFACE of ENDS.
lab_ethtool() {
  local end
  for end in $2; do nsenter -t "$(pid "$1${end%:*}")" -n ethtool -K "${end#*:}" "${@:3}"; done
}
# Both ends of the forwarding lab's links that have a native XDP end in the
# DSR lab.
xdp_links="r1:eth0 katran:eth0 katran:eth1 r2:eth0 r2:eth1 real:eth0"
# The other same-frames candidate: every offload off on those links.
lab_ethtool bo- "$xdp_links" tso off gso off gro off
# And the frames a veth pair carries as the kernel makes it: TX checksum
# offload on everywhere (dsrlab turns it off: docs/DESIGN.md, Links), so TSO
# works and a sender's 64 KB super-frame crosses every hop as one frame.
lab_ethtool bs- "client:eth0 r1:eth2 r1:eth1 r2:eth2 $xdp_links" tx on >/dev/null

# What native XDP on a veth end does to its peer's TSO, shown on the TSO
# lab before its rounds: r1's end of the
# r1-katran link, before, with and after an XDP_PASS program on katran's
# end; and the same end in a lab as dsrlab configures it.
tso() { nsenter -t "$(pid "$1")" -n ethtool -k "$2" | grep -E '^tcp-segmentation-offload|tx-tcp-segmentation'; }
katran_ip() { nsenter -t "$(pid bs-katran)" -n ip link set dev eth0 "$@"; }
tso_dsrlab=$(tso bf-r1 eth0)
tso_before=$(tso bs-r1 eth0)
katran_ip xdpdrv obj bpf/pass_bpfel.o sec xdp
tso_with=$(tso bs-r1 eth0)
katran_ip xdpdrv off
tso_after=$(tso bs-r1 eth0)
tso_check=$(cat <<TXT
# r1 (eth0: its link to katran) in a lab as dsrlab sets it up: TX checksum offload off
\$ ethtool -k eth0 | grep -E 'tcp-segmentation-offload|tx-tcp-segmentation'
$tso_dsrlab
# r1 after \`ethtool -K eth0 tx on\` (and katran's eth0 the same)
\$ ethtool -k eth0 | grep -E 'tcp-segmentation-offload|tx-tcp-segmentation'
$tso_before
# katran: an XDP_PASS program on eth0, native mode
\$ ip link set dev eth0 xdpdrv obj bpf/pass_bpfel.o sec xdp
# r1
\$ ethtool -k eth0 | grep -E 'tcp-segmentation-offload|tx-tcp-segmentation'
$tso_with
# katran
\$ ip link set dev eth0 xdpdrv off
# r1
\$ ethtool -k eth0 | grep -E 'tcp-segmentation-offload|tx-tcp-segmentation'
$tso_after
TXT
)
echo "$tso_check"
if [[ $tso_after != "$tso_before" ]]; then
  echo "bench: detaching XDP from bs-katran eth0 did not give TSO back to its peer; the TSO row would not be plain" >&2
  exit 1
fi

for r in "${reals[@]}"; do iperf_server "$r"; done
# The echo service answers on the VIP; the direct and forwarded paths get
# their own.
for p in bn- bf- bx- bo- bs-; do
  docker exec -d "${p}real" dsrlab echo --node real --addr 10.111.222.11 --listen tcp/10.111.222.11:50007
  listening "${p}real" 10.111.222.11 50007
done
docker exec -d b6-real1 dsrlab echo --node real1 --addr fd00:222::11 --listen "tcp/[fd00:222::11]:50007"

declare -A gp_runs dl_runs rate_runs gp dl rate echo_pkts dl_pkts katran_frames real_frames retr drops
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
# Frames per MB uploaded where the data enters katran (its uplink) and the
# real: a TSO/GRO super-frame counts once, as the kernel handles it once.
# And the segments TCP sent again, per MB: what a lost frame costs.
per_mb() { awk -v d="$1" -v mb="$MB" -v f="${2:-%.0f}" 'BEGIN { printf f, d / (mb * 1.048576) }'; }
rx() { counter "$1" rx_packets; }
# Frames the lab's interfaces dropped (a veth end with native XDP takes its
# frames through a ring of its own, 256 frames, and drops what does not fit).
lab_drops() { # PREFIX
  local c n=0
  for c in $(docker ps -q --filter "name=^$1"); do
    n=$((n + $(docker exec "$c" sh -c 'cat /sys/class/net/*/statistics/[rt]x_dropped' | awk '{ s += $1 } END { print s + 0 }')))
  done
  echo "$n"
}
for name in "${order[@]}"; do
  read -r client target katran real <<<"${path[$name]}"
  lab=${client%client}
  kb=0 rb=$(rx "$real") db=$(lab_drops "$lab")
  [[ $katran == - ]] || kb=$(rx "$katran")
  retr[$name]=$(per_mb "$(retransmits "$client" "$target" -n "${MB}M")" %.1f)
  drops[$name]=$(per_mb $(($(lab_drops "$lab") - db)) %.1f)
  real_frames[$name]=$(per_mb $(($(rx "$real") - rb)))
  katran_frames[$name]=-
  [[ $katran == - ]] || katran_frames[$name]=$(per_mb $(($(rx "$katran") - kb)))
done
for name in dsr-native dsr-generic nat; do
  read -r client target katran _ <<<"${path[$name]}"
  before=$(lb_packets "$katran")
  docker exec "$client" dsrlab load --target 192.168.10.1:50007 --short 1000 --concurrency 8 >/dev/null
  echo_pkts[$name]=$(awk -v d=$(($(lb_packets "$katran") - before)) 'BEGIN { printf "%.1f", d / 1000 }')
  before=$(lb_packets "$katran")
  goodput "$client" "$target" -R -n "${MB}M" >/dev/null
  dl_pkts[$name]=$(per_mb $(($(lb_packets "$katran") - before)))
done
for r in "${reals[@]}"; do pkill -F "$work/iperf-$r.pid" 2>/dev/null || true; done
for f in "${labs[@]}"; do "$dsrlab" down -q -t "$work/$f.yaml" >/dev/null; done

# row NAME LABEL BASE: a goodput table row, its ratios to BASE's medians.
row() {
  local n=$1 b=$3
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$2" \
    "${gp[$n]}" "$(ratio "${gp[$n]}" "${gp[$b]}")" "${dl[$n]}" "$(ratio "${dl[$n]}" "${dl[$b]}")" \
    "${rate[$n]}" "$(ratio "${rate[$n]}" "${rate[$b]}")" "${katran_frames[$n]}" "${real_frames[$n]}" "${drops[$n]}" "${retr[$n]}"
}
# goal RATIO MIN -> "met" or "not met"; the ratio has three digits, so that
# one rounded up to the goal does not meet it.
goal() { awk -v r="$1" -v m="$2" 'BEGIN { print (r >= m ? "met" : "**not met**") }'; }
up_same=$(ratio "${gp[dsr-native]}" "${gp[forward-xdp]}" 3)
dl_direct=$(ratio "${dl[dsr-native]}" "${dl[direct]}" 3)
stamp=""
[[ $ONLY == goodput ]] && stamp="
These two tables were measured again, alone (\`ONLY=goodput scripts/bench.sh\`), on $(date -u +%Y-%m-%d) at
commit \`$commit\`; the rest of this page is from the run named above.
"
goodput_md=$(cat <<MD
## Goodput and connection rate (reference lab)
$stamp
TCP goodput in Mbit/s and short connections per second, each as median (min-max) and as a
ratio of the medians to direct routing (IPv6 rows: to direct IPv6 routing, in the dual-stack lab);
then the frames that carried one MB (10^6 bytes) of upload, where the data enters katran (its
uplink) and the real, from the interfaces' packet counters; the frames the lab's interfaces
dropped meanwhile (\`rx_dropped\` and \`tx_dropped\`), and the segments the sender sent again
(iperf3's \`Retr\`), per MB.

| path | upload (client -> server) | ratio | download (server -> client) | ratio | connections/s | ratio | upload frames per MB at katran | at the real | frames dropped per MB | TCP retransmits per MB |
|---|---|---|---|---|---|---|---|---|---|---|
$(row direct "direct routing to the real (no load balancer)" direct)
$(row forward "plain forwarding through katran's hops (no XDP)" direct)
$(row forward-xdp "**the same, with XDP_PASS on the veth ends where DSR has XDP** (the baseline)" direct)
$(row forward-nooffload "plain forwarding, TSO/GSO/GRO off on those links" direct)
$(row forward-tso "plain forwarding, TX checksum offload on (TSO super-frames)" direct)
$(row dsr-native "DSR, native XDP" direct)
$(row dsr-generic "DSR, generic XDP" direct)
$(row nat "NAT load balancer (nftables DNAT+SNAT)" direct)
$(row direct-v6 "IPv6: direct routing to the real" direct-v6)
$(row dsr-v6 "IPv6: DSR (IPv6-in-IPv6), native XDP" direct-v6)

| goal | measured | |
|---|---|---|
| DSR upload (native XDP) >= 0.95x plain forwarding with the same frames and XDP_PASS on the same veth ends | $up_same | $(goal "$up_same" 0.95) |
| DSR download (native XDP) >= 1.0x direct routing | $dl_direct | $(goal "$dl_direct" 1.0) |
| the balancer's cost per packet <= Katran's on the same packets (pass <= 0.75x, LRU hit <= 0.9x, new flow <= 1.0x) | [XDP-BENCHMARKS.md](XDP-BENCHMARKS.md#against-katran) (the \`bpf\` benchmarks) | |

DSR native upload against the other forwarding rows: $(ratio "${gp[dsr-native]}" "${gp[forward]}") of plain
forwarding, $(ratio "${gp[dsr-native]}" "${gp[forward-nooffload]}") of forwarding with offloads off, $(ratio "${gp[dsr-native]}" "${gp[forward-tso]}") of forwarding with TSO super-frames.

On upload, DSR and NAT send the data over the same hops (client, router, balancer, router,
real); only the download direction shows what DSR is for: the replies skip the balancer.
The forwarding rows are the limit of that path: kernel forwarding through as many hops
(client, r1, katran, r2, real, with replies skipping katran), katran a plain IPv4 forwarder.

### Which frames, and why the baseline has XDP_PASS

Attaching a native XDP program to a veth end turns TCP segmentation offload off on its peer.
Between veths in one kernel, a sender's 64 KB TSO frame crosses every hop as one frame unless
the next end runs XDP: then the kernel cuts it into MTU-sized frames first, and no XDP path on
veth can carry what the TSO row carries. But dsrlab turns TX checksum offload off on every veth
it makes ([DESIGN.md](DESIGN.md): a frame that becomes an XDP frame loses its pending
checksum), and without it the kernel keeps no IPv4 or IPv6 TSO at all: on this kernel the
summary line still says \`on\` (for \`tx-tcp-accecn-segmentation\`, a feature plain TCP does not
use), the features underneath say \`off [requested on]\`. The bench shows both:

\`\`\`
$tso_check
\`\`\`

So in dsrlab's labs every sender cuts its data into MTU-sized frames before the first veth
(software GSO), with or without XDP on the path: the frames columns show about the same count
per MB on every row but the TSO row, the one lab where the bench turns TX checksum offload back
on. What XDP on the path changes is the cost of each frame: a veth end with a native XDP
program takes its frames through its own NAPI ring and copies every frame that does not have
the layout XDP needs (linear, 256 bytes of headroom), which a forwarded TCP segment does not
have, into a page of its page pool before the program runs. The baseline is therefore the
XDP_PASS row: the same frames as DSR (the columns) and a program that does nothing on the very
veth ends that run XDP in the DSR lab (katran's uplink, the end that takes katran's frames on,
the real's end). It is not a strict bound: after XDP_PASS, katran builds a socket buffer again
and forwards through its kernel, where DSR's katran sends the frame back with XDP_TX and its
stack never sees it; DSR adds the lookup, the IPIP header (20 more bytes per frame to the real)
and the real's decap. So the baseline is slower than plain forwarding, and DSR can pass it:
read the goal as "the balancer costs no more than XDP on those veth ends does", and judge it
over several runs (the machine's noise is about 10%). Turning
offloads off (\`ethtool -K ... tso off gso off gro off\` on both ends of those links) gives the
same frames without that per-frame cost; it is shown for comparison: here it changes no frame,
as there was nothing left to cut.

The other cost of XDP on a veth end is loss. Its NAPI ring holds 256 frames; when the CPU
that empties it is busy (two shared vCPUs here carry the sender, every hop and the receiver),
the ring fills and the next frame is dropped, counted as \`tx_dropped\` on the end that sent it
(for katran's XDP_TX: katran's eth0, and \`rx_queue_0_xdp_tx_errors\` in its \`ethtool -S\`).
A veth end without XDP queues on the kernel's per-CPU backlog instead
(\`net.core.netdev_max_backlog\`). TCP answers each loss by sending again and slowing
down: the dropped and retransmit columns show how often each path pays it.

On a real NIC the question does not arise: the wire carries MTU-sized frames whatever the
sender's TSO does, and the driver runs XDP on each frame before GRO would merge them, in the
buffer it received the frame into (no copy). A balancer host sees the frames the wire carries
with or without XDP; compare per frame: the DSR row against the XDP_PASS row here, and the
balancer's nanoseconds per packet (the \`bpf\` benchmarks, [XDP-BENCHMARKS.md](XDP-BENCHMARKS.md))
against the time a frame takes on the wire (about 1200 ns for 1500 bytes at 10 Gbit/s, 120 ns at
100 Gbit/s).

${ROUNDS} rounds; each round measures every path back to back (the eight labs are up at once):
iperf3 for ${DURATION}s each way, then ${CONNS} short connections (connect, one line, answer, close), 16
at a time, from \`dsrlab load\` inside the client. Medians are compared. The frames are counted
during one more upload of ${MB} MiB per path (\`iperf3 -n ${MB}M\`): \`rx_packets\` of katran's uplink
and of the real's eth0 (a super-frame counts once, as the kernel handles it once; NAT's katran
also receives the server's ACKs on the same interface).

## What the load balancer carries

| path | LB packets per echo connection | ratio to NAT | LB packets per MB downloaded | ratio to NAT |
|---|---|---|---|---|
| DSR, native XDP | ${echo_pkts[dsr-native]} | $(ratio "${echo_pkts[dsr-native]}" "${echo_pkts[nat]}") | ${dl_pkts[dsr-native]} | $(ratio "${dl_pkts[dsr-native]}" "${dl_pkts[nat]}") |
| DSR, generic XDP | ${echo_pkts[dsr-generic]} | $(ratio "${echo_pkts[dsr-generic]}" "${echo_pkts[nat]}") | ${dl_pkts[dsr-generic]} | $(ratio "${dl_pkts[dsr-generic]}" "${dl_pkts[nat]}") |
| NAT load balancer | ${echo_pkts[nat]} | 1.00 | ${dl_pkts[nat]} | 1.00 |

Packets received plus sent on the load balancer's interface: for 1000 echo connections, and for
a ${MB} MiB iperf3 download (\`-R\`), per MB (10^6 bytes). DSR carries only the client->server
direction (requests and ACKs); NAT carries both directions twice.

MD
)
if [[ $ONLY == goodput ]]; then
  replace_section "Goodput" "up / down" "$goodput_md"
  echo "bench: replaced the goodput tables in $OUT"
  echo "$goodput_md"
  exit 0
fi

measure_updown

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

cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
mkdir -p "$(dirname "$OUT")"
cat >"$OUT" <<MD
# Benchmarks

Generated by \`scripts/bench.sh\` on $(date -u +%Y-%m-%d) at commit \`$commit\`.
Machine: $(nproc) vCPU ($cpu), $(free -g | awk '/Mem:/ { print $2 }') GiB, kernel $(uname -r),
Docker engine $(docker version --format '{{.Server.Version}}'). One run, one machine: the
machine is shared and noisy, so read the ratios, not the absolute numbers.

$goodput_md

$updown_md

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
