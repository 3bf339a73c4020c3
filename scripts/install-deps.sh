#!/usr/bin/env bash
# Installs and starts what dsrlab needs on a Debian host, and nothing that is
# already there: the Docker engine (Debian's docker.io) and Debian's static
# busybox, from which the default node image is built. With --clang it also
# installs clang and llvm, needed only to regenerate the BPF objects.
# Idempotent; run as root.
set -euo pipefail

want_clang=0
[[ "${1:-}" == "--clang" ]] && want_clang=1

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
installed busybox-static || need+=(busybox-static)
# scripts/host.sh (a simulated second host, for the multi-host tests) uses
# ip; dsrlab itself never does.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if ((want_clang)); then
  command -v clang >/dev/null 2>&1 || need+=(clang)
  command -v llvm-strip >/dev/null 2>&1 || need+=(llvm)
fi
if ((${#need[@]})); then
  echo "install-deps: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
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
