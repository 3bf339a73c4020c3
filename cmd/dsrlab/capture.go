//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/capture"
	"github.com/dsrlab/dsrlab/internal/capture/filter"
	"github.com/dsrlab/dsrlab/internal/image"
	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

func newCaptureCmd(out *output) *cobra.Command {
	var sel labSelector
	var file string
	var count int
	// Set when dsrlab's agent captures for dsrlab on another host: the
	// namespace as a file on this host, and the interfaces to capture on.
	var netnsPath string
	var ifaceNames []string
	cmd := &cobra.Command{
		Use:   "capture NODE[:IFACE] [-w FILE|-] [-c N] [FILTER...]",
		Short: "Capture packets on a node's interfaces, from inside its network namespace",
		Long: "capture reads packets on a lab node's interface, or on all of its interfaces when none is\n" +
			"named, with a packet socket opened in the node's network namespace: the container needs no\n" +
			"tcpdump. FILTER is a tcpdump-style expression (host, net, port, portrange, src, dst, tcp, udp,\n" +
			"icmp, icmp6, ip, ip6, arp, proto N, and, or, not, parentheses); host and net match the outer\n" +
			"header of IPIP packets. Without -w it prints one line per packet (with MAC addresses under -v);\n" +
			"-w writes pcap for one interface and pcapng, with each packet's interface and direction, for\n" +
			"several; -w - streams the file to standard output. Ctrl-C stops.",
		Example: "  dsrlab capture router\n" +
			"  dsrlab capture real1:eth0 -c 10 tcp port 50007\n" +
			"  dsrlab capture katran -w - 'proto 4 or icmp' | wireshark -k -i -",
		Args:    cobra.MinimumNArgs(1),
		PreRunE: requireRoot(rootForNamespaces),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 0 {
				return fmt.Errorf("-c %d: want a number of packets, or 0 for no limit", count)
			}
			node, iface, err := captureTarget(args[0])
			if err != nil {
				return err
			}
			expr := strings.Join(args[1:], " ")
			// A typo in the filter should not wait for the Docker engine.
			if _, err := filter.Compile(expr, filter.Ethernet); err != nil {
				return err
			}
			if netnsPath != "" {
				c, err := openCaptureAt(netnsPath, node, ifaceNames, expr)
				if err != nil {
					return err
				}
				defer c.Close()
				// dsrlab on the other host holds standard input open
				// for as long as it wants packets: its end closing
				// (Ctrl-C there) stops this capture too.
				ctx, stop := context.WithCancel(cmd.Context())
				defer stop()
				go func() {
					io.Copy(io.Discard, cmd.InOrStdin())
					stop()
				}()
				return runCapture(ctx, c, file, count, out, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			return sel.withTopology(cmd.Context(), func(rts runtime.Set, topo *topology.Topology) error {
				return captureNode(cmd.Context(), rts, topo, node, iface, file, count, args[1:], out, cmd.OutOrStdout(), cmd.ErrOrStderr())
			})
		},
	}
	sel.flags(cmd)
	cmd.Flags().StringVar(&netnsPath, "netns", "", "")
	cmd.Flags().StringArrayVar(&ifaceNames, "iface", nil, "")
	cmd.Flags().MarkHidden("netns")
	cmd.Flags().MarkHidden("iface")
	cmd.Flags().StringVarP(&file, "write", "w", "", "write a pcap/pcapng file instead of printing; - for standard output")
	cmd.Flags().IntVarP(&count, "count", "c", 0, "stop after this many packets (0: until Ctrl-C)")
	return cmd
}

// captureTarget reads NODE[:IFACE]. "router:" names no interface; taking
// it for every interface would capture more than was asked for.
func captureTarget(arg string) (node, iface string, err error) {
	node, iface, colon := strings.Cut(arg, ":")
	switch {
	case node == "":
		return "", "", fmt.Errorf("%q: want NODE or NODE:IFACE", arg)
	case colon && iface == "":
		return "", "", fmt.Errorf("%q names no interface after the colon: write %s:IFACE, or %s for all of its interfaces", arg, node, node)
	}
	return node, iface, nil
}

// captureNode captures on a node of a running lab (node:iface, or all
// its links), here or through dsrlab's agent on the node's host, and
// writes decoded lines, or with file the pcap/pcapng file ("-": to
// stdout), as `dsrlab capture` does; its messages go to stderr.
func captureNode(ctx context.Context, rts runtime.Set, topo *topology.Topology, node, iface, file string, count int, filterArgs []string, out *output, stdout, stderr io.Writer) error {
	if n := topo.Node(node); n != nil && !n.Host.Local() {
		return remoteCapture(ctx, rts, topo, n, iface, file, count, filterArgs, out, stdout, stderr)
	}
	c, err := openCapture(ctx, rts, topo, node, iface, strings.Join(filterArgs, " "))
	if err != nil {
		return err
	}
	defer c.Close()
	return runCapture(ctx, c, file, count, out, stdout, stderr)
}

// openCapture opens a socket on the named interface, or on each of the
// node's interfaces of the topology, inside the node's namespace. Any
// interface name is accepted, so devices that are not links of the
// topology (lo, tunl0) can be captured too.
func openCapture(ctx context.Context, rts runtime.Set, topo *topology.Topology, node, iface, expr string) (*capture.Capture, error) {
	n := topo.Node(node)
	if n == nil {
		return nil, fmt.Errorf("lab %q has no node %q", topo.Name, node)
	}
	names, err := captureIfaces(n, iface)
	if err != nil {
		return nil, err
	}
	ns, err := lab.NodeNamespace(ctx, rts, topo, node)
	if err != nil {
		return nil, err
	}
	return openOn(ns, node, names, expr)
}

// captureIfaces is the interface named, or all the node's links.
func captureIfaces(n *topology.Node, iface string) ([]string, error) {
	if iface != "" {
		return []string{iface}, nil
	}
	var names []string
	for _, ifc := range n.Interfaces {
		names = append(names, ifc.Name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("node %s has no interfaces in the topology; name one as %s:IFACE", n.Name, n.Name)
	}
	return names, nil
}

// openOn opens a socket on each interface inside ns, and closes ns: the
// sockets stay in the namespace once made.
func openOn(ns *netconf.Namespace, node string, ifaces []string, expr string) (*capture.Capture, error) {
	defer ns.Close()
	sources := make([]capture.Source, len(ifaces))
	for i, name := range ifaces {
		sources[i] = capture.Source{Node: node, Iface: name, NS: ns}
	}
	return capture.Open(sources, expr)
}

// openCaptureAt opens sockets in the namespace a file names, as the
// agent does on another host.
func openCaptureAt(path, node string, ifaces []string, expr string) (*capture.Capture, error) {
	ns, err := netconf.FromPath(path, node)
	if err != nil {
		return nil, err
	}
	return openOn(ns, node, ifaces, expr)
}

// remoteCapture captures on a node of another host: the packets are read
// there, by `dsrlab capture` in dsrlab's agent container, and streamed
// back (decoded lines, or the pcap/pcapng file).
func remoteCapture(ctx context.Context, rts runtime.Set, topo *topology.Topology, n *topology.Node, iface, file string, count int, filterArgs []string, out *output, stdout, stderr io.Writer) error {
	paths, err := lab.NamespacePaths(ctx, rts, topo, n.Host.Name, n.Name)
	if err != nil {
		return err
	}
	argv := []string{image.BinaryPath, "capture", "--netns", paths[n.Name], "-c", fmt.Sprint(count)}
	names, err := captureIfaces(n, iface)
	if err != nil {
		return err
	}
	for _, name := range names {
		argv = append(argv, "--iface", name)
	}
	if file != "" {
		argv = append(argv, "-w", "-")
	}
	if out.verbose {
		argv = append(argv, "-v")
	}
	if out.quiet {
		argv = append(argv, "-q")
	}
	argv = append(append(argv, n.Name), filterArgs...)
	dst := stdout
	if file != "" && file != "-" {
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		defer f.Close()
		dst = f
	}
	// Standard input stays open until this command ends: the capture on
	// the other host ends with it.
	stdin, hold := io.Pipe()
	defer hold.Close()
	code, err := lab.ExecAgent(ctx, rts, topo, n.Host.Name, argv, runtime.ExecIO{Stdin: stdin, Stdout: dst, Stderr: stderr})
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError{code: code}
	}
	return nil
}

func runCapture(ctx context.Context, c *capture.Capture, file string, count int, out *output, stdout, stderr io.Writer) error {
	ifaces := c.Interfaces()
	var names []string
	for _, ifc := range ifaces {
		names = append(names, ifc.Name)
	}
	if !out.quiet {
		fmt.Fprintf(stderr, "capturing on %s\n", strings.Join(names, ", "))
	}
	var handle func(capture.Packet) error
	var done func() error
	switch file {
	case "":
		w := stdout
		handle = func(p capture.Packet) error {
			_, err := fmt.Fprintln(w, capture.Format(p, ifaces[p.Iface], out.verbose))
			return err
		}
		done = func() error { return nil }
	default:
		var dst io.Writer = stdout
		closeFile := func() error { return nil }
		if file != "-" {
			f, err := os.Create(file)
			if err != nil {
				return err
			}
			dst, closeFile = f, f.Close
		}
		bw := bufio.NewWriter(dst)
		pw, err := capture.NewWriter(bw, ifaces)
		if err != nil {
			closeFile()
			return err
		}
		handle = func(p capture.Packet) error {
			if err := pw.WritePacket(p); err != nil {
				return err
			}
			// A reader at the other end of a pipe (wireshark -k -i -)
			// shows each packet as it comes; a file is written in bulk.
			if file == "-" {
				return bw.Flush()
			}
			return nil
		}
		done = func() error {
			err := bw.Flush()
			if cerr := closeFile(); err == nil {
				err = cerr
			}
			return err
		}
		if err := bw.Flush(); err != nil { // the header, before any packet
			done()
			return err
		}
	}
	c.OnDown(func(i int) {
		fmt.Fprintf(stderr, "%s is down or gone: nothing is captured there until it is up again (a deleted interface, never again)\n", ifaces[i].Name)
	})
	n := 0
	err := c.Run(ctx, count, func(p capture.Packet) error { n++; return handle(p) })
	if derr := done(); err == nil {
		err = derr
	}
	if err != nil {
		return err
	}
	if !out.quiet {
		msg := fmt.Sprintf("%d packets captured", n)
		if st, serr := c.Stats(); serr == nil && st.Dropped > 0 {
			msg += fmt.Sprintf(", %d dropped by the kernel (queue full)", st.Dropped)
		}
		fmt.Fprintln(stderr, msg)
	}
	return nil
}
