// Package bpf holds dsrlab's XDP programs — the IPIP Direct Server Return
// balancer, the decapsulator for reals without an ipip device, and the
// XDP_PASS stub for veth peers — and a Go API over their maps.
//
// The C sources are compiled by bpf2go; the generated *_bpfel.go and
// *_bpfel.o files are committed so that building needs no clang. bench.bpf.c
// is a benchmark harness around the balancer's pipeline; its output is
// generated as test files, so it is not part of the package proper.
package bpf

//go:generate go tool bpf2go -tags linux -target bpfel -type vip_key -type vip_meta -type addr_filter -type vip_hash -type ch_ring -type real_def -type flow_key -type flow_pin -type lb_config -type lb_counters -type global_stat balancer balancer.bpf.c -- -I./headers -I./prog/include/bpf -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel -type decap_stat decap decap.bpf.c -- -I./headers -I./prog/include/bpf -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel pass pass.bpf.c -- -I./headers -I./prog/include/bpf -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel -output-suffix _test -no-global-types bench bench.bpf.c -- -I./headers -I./prog/include/bpf -O2 -g -Wall -Werror
