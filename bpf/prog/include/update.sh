#!/bin/sh
# Refreshes the vendored libbpf headers from the installed libbpf-dev.
# Run from anywhere; then `make generate` and commit both: dsrlab's own
# programs (bpf/, internal/trace/bpf/) compile against them too.
set -eu

src=${LIBBPF_INCLUDE:-/usr/include/bpf}
dst=$(dirname "$0")/bpf

for h in bpf_helpers.h bpf_helper_defs.h bpf_endian.h; do
	cp "$src/$h" "$dst/$h"
done

version=$(dpkg-query -W -f='${Version}' libbpf-dev 2>/dev/null || echo unknown)
echo "copied libbpf headers from $src (libbpf-dev $version)"
