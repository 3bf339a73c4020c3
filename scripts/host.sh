#!/usr/bin/env bash
# Simulates another host on this machine for multi-host labs: a Docker engine
# in its own network, PID and mount namespaces, reachable over an underlay
# network, so that its containers are as foreign to this host's engine as on
# a second machine.
#
#   host.sh start NAME [INDEX]   start host NAME (idempotent); underlay 172.31.255.(1+INDEX), INDEX 1-253, default 1
#   host.sh stop [--purge] NAME  stop it and remove its namespace, link and /run files;
#                                --purge also removes its image cache /var/lib/docker-NAME and its log
#   host.sh env NAME             print DOCKER=<engine URL> UNDERLAY=<address> NETNS=<netns path>
#
# Underlay: 172.31.255.0/24, one Ethernet segment for every simulated host.
#
#   this host's namespace          netns dsrlab-ul (the switch)      netns dsrlab-host-NAME
#   dsrlab-ul 172.31.255.1/24 <--> dsrlab-local -+
#                                                br0
#                                  dsrlab-NAME --+ <--------------> eth0 172.31.255.(1+INDEX)/24
#
# The bridge lives in a namespace of its own rather than in this host's:
# with br_netfilter loaded, bridged frames go through this host's iptables
# FORWARD chain, whose policy Docker sets to DROP, so traffic between two
# simulated hosts would vanish. The switch namespace has no rules. All links
# have MTU UNDERLAY_MTU (9000). The switch and dsrlab-ul exist while at least one host does.
#
# The engine: dockerd started as pitfall 10 of DESIGN.md measured (nsenter
# into the host's netns, not `ip netns exec`, which remounts /sys), logging
# to /var/log/dockerd-NAME.log. It is PID 1 of its PID namespace, so the pid
# file it writes (/run/docker-NAME.pid) says 1; this script records the host
# PID in /run/docker-NAME.hostpid and only ever signals that process, after
# checking it is still this host's dockerd. Its containers die with it.
set -euo pipefail

readonly UNDERLAY_NET=172.31.255
readonly LOCAL_ADDR=$UNDERLAY_NET.1
# Jumbo frames, as data-centre underlays carry: a lab whose hosts declare
# `mtu: 9000` keeps its encapsulating links at their usual MTU over VXLAN.
readonly UNDERLAY_MTU=9000
readonly SWITCH_NS=dsrlab-ul
readonly SWITCH_BR=br0
readonly LOCAL_LINK=dsrlab-ul
readonly LOCAL_PORT=dsrlab-local
readonly HOST_NS_PREFIX=dsrlab-host-
readonly ENGINE_WAIT=60 # seconds for a new engine to answer
readonly STOP_WAIT=30   # seconds for an engine to stop on SIGTERM (it stops its containers first)

die() { echo "host.sh: $*" >&2; exit 1; }
say() { echo "host.sh: $*"; }

usage() {
	sed -n '/^#   host.sh start/,/^#   host.sh env/s/^#   //p' "$0" >&2
	exit 2
}

# Host names end up in interface names (dsrlab-NAME, at most 15 bytes) and paths.
check_name() {
	[[ $1 =~ ^[a-z0-9][a-z0-9-]{0,7}$ ]] || die "host name '$1': want 1-8 of [a-z0-9-], starting with a letter or digit"
	[[ $1 != local ]] || die "host name 'local' is this machine's"
}

netns_exists() { [[ -e /run/netns/$1 ]]; }

# The MAC of an underlay address is derived from it, so a host started
# again answers with the MAC its neighbours still have cached (they would
# otherwise keep sending to the old one for up to a minute).
mac_of() { printf '02:00:ac:1f:ff:%02x' "${1##*.}"; }

ns_of() { echo "$HOST_NS_PREFIX$1"; }

# The underlay address of a started host, read from the host itself.
host_addr() {
	local ns
	ns=$(ns_of "$1")
	netns_exists "$ns" || return 0
	ip -n "$ns" -4 -o addr show dev eth0 2>/dev/null | awk '{split($4, a, "/"); print a[1]; exit}'
}

hostpid_file() { echo "/run/docker-$1.hostpid"; }

# The host PID of NAME's dockerd if it is running; nothing otherwise. A PID
# is believed only if that process is still a dockerd with NAME's exec root:
# PIDs are reused, and this script must never signal someone else's process.
engine_pid() {
	local f pid cmd
	f=$(hostpid_file "$1")
	[[ -r $f ]] || return 0
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 0
	[[ "$cmd " == "dockerd "*" --exec-root /run/docker-$1 "* ]] && echo "$pid"
	return 0
}

engine_answers() { timeout 10 docker -H "unix:///run/docker-$1.sock" info >/dev/null 2>&1; }

lock() {
	exec 9>/run/dsrlab-host.lock
	flock 9
}

# Refuses an underlay that would shadow or be shadowed by a network this
# host already uses (Docker's address pools reach 172.31.0.0/16).
check_underlay_free() {
	local clash
	clash=$({
		ip -4 -o route show root "$UNDERLAY_NET.0/24"
		ip -4 -o route show match "$UNDERLAY_NET.0/24"
	} | grep -v '^default' | grep -v " dev $LOCAL_LINK " || true)
	[[ -z $clash ]] || die "underlay $UNDERLAY_NET.0/24 is already routed here: $clash"
}

ensure_switch() {
	if ! netns_exists "$SWITCH_NS"; then
		ip netns add "$SWITCH_NS"
		ip -n "$SWITCH_NS" link set lo up
	fi
	if ! ip -n "$SWITCH_NS" link show "$SWITCH_BR" >/dev/null 2>&1; then
		ip -n "$SWITCH_NS" link add "$SWITCH_BR" mtu "$UNDERLAY_MTU" type bridge
	fi
	# Set on every start: a switch left by an older host.sh may have
	# another MTU.
	ip -n "$SWITCH_NS" link set "$SWITCH_BR" mtu "$UNDERLAY_MTU" up
	if ! ip link show "$LOCAL_LINK" >/dev/null 2>&1; then
		check_underlay_free
		ip link add "$LOCAL_LINK" mtu "$UNDERLAY_MTU" address "$(mac_of "$LOCAL_ADDR")" \
			type veth peer name "$LOCAL_PORT" mtu "$UNDERLAY_MTU" netns "$SWITCH_NS"
	fi
	ip link set "$LOCAL_LINK" mtu "$UNDERLAY_MTU"
	ip -n "$SWITCH_NS" link set "$LOCAL_PORT" mtu "$UNDERLAY_MTU" master "$SWITCH_BR" up
	ip addr replace "$LOCAL_ADDR/24" dev "$LOCAL_LINK"
	ip link set "$LOCAL_LINK" up
}

ensure_host_net() {
	local name=$1 addr=$2 ns other
	ns=$(ns_of "$name")
	for other in /run/netns/"$HOST_NS_PREFIX"*; do
		[[ -e $other && $other != "/run/netns/$ns" ]] || continue
		[[ $(host_addr "${other#/run/netns/"$HOST_NS_PREFIX"}") != "$addr" ]] ||
			die "underlay $addr is taken by host ${other#/run/netns/"$HOST_NS_PREFIX"}: choose another INDEX"
	done
	if ! netns_exists "$ns"; then
		ip netns add "$ns"
		ip -n "$ns" link set lo up
	fi
	if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
		ip -n "$SWITCH_NS" link add "dsrlab-$name" mtu "$UNDERLAY_MTU" \
			type veth peer name eth0 mtu "$UNDERLAY_MTU" address "$(mac_of "$addr")" netns "$ns"
	fi
	ip -n "$SWITCH_NS" link set "dsrlab-$name" master "$SWITCH_BR" up
	ip -n "$ns" addr replace "$addr/24" dev eth0
	ip -n "$ns" link set eth0 up
}

# Starts NAME's dockerd in the background, in a session of its own so that
# it outlives this script and its caller's process group, and records its
# host PID. It must not inherit the lock's descriptor, or it would hold the
# lock for as long as it runs.
start_engine() {
	local name=$1 ns launcher pid i
	ns=$(ns_of "$name")
	echo '{}' >"/run/docker-$name.json"
	mkdir -p "/var/lib/docker-$name"
	# Inside: /proc for the new PID namespace, and a private /run/containerd
	# so that dockerd starts its own containerd (it would adopt a system
	# one found there) whose shim sockets stay on this "host".
	# shellcheck disable=SC2016 # expanded by the inner shell
	setsid nsenter --net="/run/netns/$ns" \
		unshare --pid --fork --mount --propagation private \
		sh -c 'mount -t proc proc /proc &&
			mkdir -p /run/containerd && mount -t tmpfs tmpfs /run/containerd &&
			exec dockerd --config-file "/run/docker-$1.json" --data-root "/var/lib/docker-$1" \
				--exec-root "/run/docker-$1" -H "unix:///run/docker-$1.sock" -p "/run/docker-$1.pid" \
				--bridge=none --iptables=false --ip6tables=false' sh "$name" \
		</dev/null >>"/var/log/dockerd-$name.log" 2>&1 9>&- &
	# setsid, nsenter and unshare each exec the next: $! is unshare, which
	# forks the shell that becomes dockerd.
	launcher=$!
	for ((i = 0; i < 100; i++)); do
		pid=$(ps -o pid= --ppid "$launcher" | tr -d ' ') || true # none yet
		if [[ -n $pid ]] && [[ $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") == dockerd* ]]; then
			echo "$pid" >"$(hostpid_file "$name")"
			break
		fi
		kill -0 "$launcher" 2>/dev/null || break
		sleep 0.1
	done
	if [[ -z $(engine_pid "$name") ]]; then
		tail -n 20 "/var/log/dockerd-$name.log" >&2 || true
		die "$name: dockerd did not start (log: /var/log/dockerd-$name.log)"
	fi
	local deadline=$((SECONDS + ENGINE_WAIT))
	while ((SECONDS < deadline)); do
		engine_answers "$name" && return 0
		[[ -n $(engine_pid "$name") ]] || break
		sleep 1
	done
	tail -n 20 "/var/log/dockerd-$name.log" >&2 || true
	stop_engine "$name"
	die "$name: engine did not answer on unix:///run/docker-$name.sock within ${ENGINE_WAIT}s (log: /var/log/dockerd-$name.log)"
}

stop_engine() {
	local name=$1 pid i
	pid=$(engine_pid "$name")
	if [[ -z $pid ]]; then
		rm -f "$(hostpid_file "$name")"
		return 0
	fi
	say "$name: stopping dockerd (host pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < STOP_WAIT * 10; i++)); do
		[[ -n $(engine_pid "$name") ]] || break
		sleep 0.1
	done
	if [[ -n $(engine_pid "$name") ]]; then
		say "$name: dockerd ignored SIGTERM for ${STOP_WAIT}s: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		# Its PID namespace dies with it, taking containerd and the containers.
		while [[ -n $(engine_pid "$name") ]]; do sleep 0.1; done
	fi
	rm -f "$(hostpid_file "$name")"
}

# rm -rf, unless something is mounted there in this host's mount namespace
# (the engine's own mounts were private to its namespace, gone with it).
remove_tree() {
	if findmnt -rn -o TARGET | grep -qxE "$(printf '%s' "$1" | sed 's/[.]/[.]/g')(/.*)?"; then
		die "not removing $1: something is mounted under it"
	fi
	rm -rf "$1"
}

cmd_start() {
	local name=$1 index=${2:-1} addr have
	check_name "$name"
	if ! [[ $index =~ ^[1-9][0-9]{0,2}$ ]] || ((index < 1 || index > 253)); then
		die "INDEX '$index': want 1-253"
	fi
	addr=$UNDERLAY_NET.$((1 + index))
	lock
	have=$(host_addr "$name")
	[[ -z $have || $have == "$addr" ]] || die "$name already has underlay $have, not $addr: stop it first"
	ensure_switch
	ensure_host_net "$name" "$addr"
	if [[ -n $(engine_pid "$name") ]]; then
		if engine_answers "$name"; then
			say "$name: already running"
			cmd_env "$name"
			return
		fi
		# A dockerd of this host's that does not answer is stuck: replace it.
		stop_engine "$name"
	elif engine_answers "$name"; then
		die "an engine this script did not start answers on unix:///run/docker-$name.sock: stop it first"
	fi
	# Left by an engine that died without cleaning up: inside its PID
	# namespace dockerd would find "itself" (pid 1) running and refuse.
	rm -f "/run/docker-$name.pid"
	start_engine "$name"
	say "$name: started"
	cmd_env "$name"
}

cmd_stop() {
	local purge=0 name="" arg ns
	for arg in "$@"; do
		case $arg in
		--purge) purge=1 ;;
		-*) usage ;;
		*) [[ -z $name ]] || usage; name=$arg ;;
		esac
	done
	[[ -n $name ]] || usage
	check_name "$name"
	ns=$(ns_of "$name")
	lock
	stop_engine "$name"
	if ip -n "$SWITCH_NS" link show "dsrlab-$name" >/dev/null 2>&1; then
		ip -n "$SWITCH_NS" link del "dsrlab-$name"
	fi
	if netns_exists "$ns"; then
		ip netns del "$ns"
	fi
	remove_tree "/run/docker-$name"
	rm -f "/run/docker-$name.sock" "/run/docker-$name.pid" "/run/docker-$name.json"
	if ((purge)); then
		remove_tree "/var/lib/docker-$name"
		rm -f "/var/log/dockerd-$name.log"
	fi
	if ! compgen -G "/run/netns/$HOST_NS_PREFIX*" >/dev/null; then
		if ip link show "$LOCAL_LINK" >/dev/null 2>&1; then
			ip link del "$LOCAL_LINK"
		fi
		if netns_exists "$SWITCH_NS"; then
			ip netns del "$SWITCH_NS"
		fi
	fi
	say "$name: stopped"
}

cmd_env() {
	local name=$1 addr
	check_name "$name"
	addr=$(host_addr "$name")
	[[ -n $addr && -n $(engine_pid "$name") ]] || die "$name is not running (host.sh start $name)"
	echo "DOCKER=unix:///run/docker-$name.sock UNDERLAY=$addr NETNS=/run/netns/$(ns_of "$name")"
}

[[ $(id -u) == 0 ]] || die "needs root (network namespaces, dockerd)"
for tool in ip nsenter unshare dockerd; do
	command -v "$tool" >/dev/null 2>&1 || die "needs $tool: scripts/install-deps.sh --test installs what is missing"
done
(($# >= 2)) || usage
cmd=$1
shift
case $cmd in
start) (($# <= 2)) || usage; cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
env) (($# == 1)) || usage; cmd_env "$1" ;;
*) usage ;;
esac
