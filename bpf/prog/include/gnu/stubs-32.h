/* Empty on purpose. glibc's <gnu/stubs.h> includes stubs-32.h when the
 * target is not x86_64 (under clang -target bpf it is not), and Debian ships
 * only stubs-64.h: a BPF program that includes a libc header (stdint.h, via
 * Katran's headers) would fail on it. The stubs only mark unimplemented
 * libc functions, which a BPF program cannot call anyway. */
