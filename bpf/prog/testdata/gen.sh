#!/bin/sh
# Regenerates nobtf.o, the one committed object: built without -g on purpose,
# so that Open's "compile with -g" error has something to reject. The other
# testdata sources are compiled by the tests themselves through Build.
set -eu
cd "$(dirname "$0")"
clang -O2 -target bpf -I../include -idirafter "/usr/include/$(clang -print-multiarch)" -c nobtf.c -o nobtf.o
