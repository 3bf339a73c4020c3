//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/dsrlab/dsrlab/internal/lab"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/internal/ui"
	"github.com/dsrlab/dsrlab/topology"
)

// minToken keeps a token given by hand from being guessable.
const minToken = 16

func newUICmd() *cobra.Command {
	var sel labSelector
	var listen, token string
	var open bool
	cmd := &cobra.Command{
		Use:   "ui [-t FILE | --name LAB] [--listen 127.0.0.1:7007] [--token T] [--open]",
		Short: "Serve a live page of a running lab: its links' traffic each way, balancers, programs, trace and capture",
		Long: "ui serves a web page, from dsrlab itself with every asset built in, that draws the lab as\n" +
			"`dsrlab graph` does and keeps it live: each link's packets and bits per second in each direction,\n" +
			"read every second from the nodes' interface counters (through dsrlab's agent on other hosts),\n" +
			"coloured by what crosses it (request, IPIP tunnel, direct return); per balancer its VIPs, reals,\n" +
			"weights and packets per second to each real, and its counters; per node its XDP programs; a\n" +
			"trace button that runs `dsrlab trace` and draws its hops; a capture button that downloads a pcap\n" +
			"of an interface; and a log of what changed. A lab that goes down shows as down, and the page\n" +
			"follows the lab through `dsrlab up` again.\n" +
			"\n" +
			"It listens on loopback unless --listen says otherwise. The URL printed carries a token (random,\n" +
			"or --token): the page's trace and capture need it on loopback too, and off loopback every request\n" +
			"does. See docs/UI.md.",
		Example: "  dsrlab up && dsrlab ui --open\n" +
			"  dsrlab ui --name dsr3 --listen 0.0.0.0:7007",
		Args:    cobra.NoArgs,
		PreRunE: requireRoot(rootForNamespaces),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if token == "" {
				token = ui.NewToken()
			} else if len(token) < minToken {
				return fmt.Errorf("--token: at least %d characters, or none for a random one", minToken)
			}
			rts, closeAll, name, err := uiEngines(ctx, &sel)
			if err != nil {
				return err
			}
			defer closeAll()
			srv, err := ui.New(ui.Config{Lab: name, Engines: rts, Listen: listen, Token: token, Capture: uiCapture})
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			url := srv.URL(l.Addr().String())
			// Listening on every address: the machine's name reaches it.
			if ap, ok := l.Addr().(*net.TCPAddr); ok && ap.IP.IsUnspecified() {
				if host, err := os.Hostname(); err == nil {
					url = srv.URL(net.JoinHostPort(host, fmt.Sprint(ap.Port)))
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "dsrlab ui: lab %s at %s (Ctrl-C stops)\n", name, url)
			if open {
				openBrowser(cmd.ErrOrStderr(), url)
			}
			return srv.Serve(ctx, l)
		},
	}
	sel.flags(cmd)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:7007", "address to serve on; off loopback every request needs the token")
	cmd.Flags().StringVar(&token, "token", "", "token the page's URL carries (default: a random one)")
	cmd.Flags().BoolVar(&open, "open", false, "open the page in a browser (xdg-open), if there is one")
	return cmd
}

// uiEngines connects to the engines of the lab's hosts. A lab that is
// down has no recorded hosts: the page then watches this host's engine,
// which sees the lab come up unless it spans several hosts.
func uiEngines(ctx context.Context, sel *labSelector) (runtime.Set, func(), string, error) {
	rt, closeRT, err := openRuntime()
	if err != nil {
		return nil, nil, "", err
	}
	name, err := sel.labName(ctx, rt)
	closeRT()
	if err != nil {
		return nil, nil, "", err
	}
	var topo *topology.Topology
	if sel.file != "" {
		topo, err = topology.Load(sel.file)
	} else {
		topo, err = lab.LoadState(name)
	}
	hosts := map[string]lab.HostRecord{topology.LocalHost: {}}
	if err == nil {
		hosts = hostRecords(topo)
	}
	rts, closeAll, err := openEngines(hosts)
	return rts, closeAll, name, err
}

// uiCapture is `dsrlab capture NODE:IFACE -c COUNT -w -` for the page.
func uiCapture(ctx context.Context, rts runtime.Set, topo *topology.Topology, node, iface string, count int, w io.Writer) error {
	return captureNode(ctx, rts, topo, node, iface, "-", count, nil, &output{quiet: true}, w, io.Discard)
}

// openBrowser starts the desktop's opener on url, when there is one; the
// page is served either way.
func openBrowser(stderr io.Writer, url string) {
	for _, name := range []string{"xdg-open", "sensible-browser", "x-www-browser"} {
		path, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		c := exec.Command(path, url)
		if err := c.Start(); err == nil {
			go c.Wait()
			return
		}
	}
	fmt.Fprintln(stderr, "dsrlab ui: no browser opener (xdg-open) found: open the URL above yourself")
}
