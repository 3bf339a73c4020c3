#!/usr/bin/env bash
# Installs and starts what dsrlab needs on a Debian host, and nothing that is
# already there: the Docker engine (Debian's docker.io) and Debian's static
# busybox, from which the default node image is built.
#   --clang  also clang and llvm, to compile users' programs and regenerate
#            the BPF objects
#   --test   also what the tests need (`make test`): clang and llvm, iproute2
#            (scripts/host.sh), openssh-server (the ssh:// engine test), bird2
#            and frr (the BGP speaker's interoperability tests) and chromium
#            (the browser test of `dsrlab ui`)
# Idempotent; run as root.
set -euo pipefail

want_clang=0 want_test=0
for arg in "$@"; do
  case $arg in
    --clang) want_clang=1 ;;
    --test) want_clang=1 want_test=1 ;;
    *) echo "usage: $0 [--clang] [--test]" >&2; exit 2 ;;
  esac
done

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
installed busybox-static || need+=(busybox-static)
if ((want_clang)); then
  command -v clang >/dev/null 2>&1 || need+=(clang)
  command -v llvm-strip >/dev/null 2>&1 || need+=(llvm)
fi
if ((want_test)); then
  # scripts/host.sh uses ip; dsrlab itself never does.
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
  # The ssh:// engine test runs its own OpenSSH server inside a simulated
  # host (dsrlab speaks SSH with its own client, no ssh binary).
  [[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
  # internal/bgp peers its speakers with a BIRD and an FRR router in a
  # namespace, configured as docs/BGP.md tells users to.
  command -v bird >/dev/null 2>&1 || need+=(bird2)
  [[ -x /usr/lib/frr/bgpd ]] || need+=(frr)
  # The browser test of `dsrlab ui` drives headless Chromium (chromedp).
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
fi
if ((${#need[@]})); then
  echo "install-deps: installing ${need[*]}"
  apt-get update -qq
  # No service is started by the install (Debian's policy-rc.d): the tests
  # start the sshd they need in a namespace of their own, and nobody asked
  # for one listening on this machine. dockerd is started below.
  policy=/usr/sbin/policy-rc.d ours=""
  if [[ ! -e $policy ]]; then
    ours=$policy
    trap 'rm -f "$ours"' EXIT
    printf '#!/bin/sh\nexit 101\n' >"$ours"
    chmod 755 "$ours"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  [[ -z $ours ]] || rm -f "$ours"
  trap - EXIT
  # Nor at the next boot.
  if command -v systemctl >/dev/null 2>&1; then
    [[ " ${need[*]} " != *" openssh-server "* ]] || systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true
    [[ " ${need[*]} " != *" bird2 "* ]] || systemctl disable bird.service >/dev/null 2>&1 || true
    [[ " ${need[*]} " != *" frr "* ]] || systemctl disable frr.service >/dev/null 2>&1 || true
  fi
fi

# A fresh machine has the engine installed but not running, and may have no
# init system to start it: start dockerd directly then.
if ! docker info >/dev/null 2>&1; then
  if [[ -d /run/systemd/system ]]; then
    systemctl start docker
  else
    echo "install-deps: starting dockerd (log: /var/log/dockerd.log)"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "install-deps: dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi
echo "install-deps: docker engine $(docker version --format '{{.Server.Version}}') is up; busybox-static present"
