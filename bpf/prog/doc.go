// Package prog handles a user's own BPF object: it compiles a libbpf-style C
// source (Build, with libbpf's helper headers shipped), opens the ELF and
// picks its XDP program (Open), writes map entries given by BTF field names
// (Encode, Load), and reads and changes the maps of a program already
// attached (Maps). Nothing here is specific to dsrlab's own balancer, so the
// built-in programs can go through the same path.
package prog
