package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/dsrlab/dsrlab/internal/image"
	"github.com/dsrlab/dsrlab/internal/netconf"
	"github.com/dsrlab/dsrlab/internal/runtime"
	"github.com/dsrlab/dsrlab/topology"
)

const (
	// serviceTimeout bounds how long Up waits for an echo service to answer.
	serviceTimeout = 10 * time.Second
)

// services starts the echo service wherever it does not answer.
func (d *deployment) services(ctx context.Context) (string, error) {
	type echoJob struct {
		real *topology.Node
		vip  *topology.VIP
	}
	var jobs []echoJob
	for _, r := range d.topo.NodesOfKind(topology.KindReal) {
		if !d.here(r) {
			continue
		}
		for _, v := range echoVIPs(d.topo.VIPsBackedBy(r)) {
			jobs = append(jobs, echoJob{r, v})
		}
	}
	answered := make([]bool, len(jobs))
	errs := make([]error, len(jobs))
	// Each start is mostly waiting (an exec round trip, the first answer).
	parallel(len(jobs), engineWorkers, func(i int) {
		j := jobs[i]
		ok, err := d.ensureEcho(ctx, j.real, j.vip)
		if err != nil {
			errs[i] = fmt.Errorf("node %s: echo service for %s: %w", j.real.Name, j.vip, err)
		}
		answered[i] = ok
		d.progress("services", len(jobs))
	})
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	running := 0
	for _, ok := range answered {
		if ok {
			running++
		}
	}
	return fmt.Sprintf("echo: %d started, %d already answering", len(jobs)-running, running), nil
}

// ensureEcho reports true if the service already answered; otherwise it
// starts it and waits until it answers, so that Up returning means the VIP
// works.
func (d *deployment) ensureEcho(ctx context.Context, r *topology.Node, v *topology.VIP) (bool, error) {
	ns := d.ns[r.Name]
	at := echoAddr(r, v)
	if probe(ns, v.Proto, at) == nil {
		return true, nil
	}
	if d.rts == nil {
		// The agent reaches no engine: the service is the container's
		// main process, and a container restarted by up runs it again.
		return false, fmt.Errorf("does not answer at %s: `docker restart %s` on host %s", at, r.ContainerName, r.Host.Name)
	}
	if err := d.rt(r).ExecDetached(ctx, d.containers[r.Name].ID, echoCommand(r, []*topology.VIP{v})); err != nil {
		return false, err
	}
	deadline := time.Now().Add(serviceTimeout)
	for {
		err := probe(ns, v.Proto, at)
		if err == nil {
			d.change("services", fmt.Sprintf("echo on %s for %s", r.Name, v))
			return false, nil
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("no answer after %v (is %s in the image?): %w", serviceTimeout, image.BinaryPath, err)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// echoCommand runs the echo service of a real for some of its VIPs.
func echoCommand(r *topology.Node, vips []*topology.VIP) []string {
	up := r.Uplink()
	addr := up.Addr
	if !addr.IsValid() {
		addr = up.Addr6
	}
	cmd := []string{image.BinaryPath, "echo", "--node", r.Name, "--addr", addr.Addr().String()}
	if up.Addr6.IsValid() {
		cmd = append(cmd, "--addr6", up.Addr6.Addr().String())
	}
	for _, v := range vips {
		cmd = append(cmd, "--listen", fmt.Sprintf("%s/%s", v.Proto, echoAddr(r, v)))
	}
	return cmd
}

// echoAddr is where a real's echo service for v listens: the VIP itself for
// DSR, where packets arrive still addressed to it; the real's own address
// for NAT, where the balancer rewrote the destination.
func echoAddr(r *topology.Node, v *topology.VIP) netip.AddrPort {
	if v.NAT() {
		addr, _ := v.Tunnel(r)
		return netip.AddrPortFrom(addr, v.Port)
	}
	return netip.AddrPortFrom(v.Address, v.Port)
}

// probe asks the echo service on a real for one answer, from inside the
// real's own namespace.
func probe(ns *netconf.Namespace, proto topology.Proto, at netip.AddrPort) error {
	c, err := ns.Dial(string(proto), at.String(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("dsrlab-probe\n")); err != nil {
		return err
	}
	buf := make([]byte, 256)
	_, err = c.Read(buf)
	return err
}

// execs runs the exec commands of the nodes this run created, last, when
// the whole data path works. They run once: they are not assumed to be
// safe to run twice.
func (d *deployment) execs(ctx context.Context) (string, error) {
	execs := 0
	for _, n := range d.topo.Nodes {
		if !d.created[n.Name] {
			continue
		}
		for _, cmd := range n.Exec {
			var out strings.Builder
			code, err := d.rt(n).Exec(ctx, d.containers[n.Name].ID, []string{"/bin/sh", "-c", cmd}, runtime.ExecIO{Stdout: &out, Stderr: &out})
			if err != nil {
				return "", fmt.Errorf("node %s: exec %q: %w", n.Name, cmd, err)
			}
			if code != 0 {
				return "", fmt.Errorf("node %s: exec %q exited %d: %s", n.Name, cmd, code, strings.TrimSpace(out.String()))
			}
			execs++
		}
	}
	return fmt.Sprintf("%d commands", execs), nil
}
