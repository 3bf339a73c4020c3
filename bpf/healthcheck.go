//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

//go:generate go tool bpf2go -tags linux -target bpfel -type hc_tunnel healthcheck healthcheck.bpf.c -- -I./headers -I./prog/include/bpf -O2 -g -Wall -Werror

// HealthCheckName is tc_healthcheck as the kernel reports it.
const HealthCheckName = "tc_healthcheck"

// HealthCheck is the tc_healthcheck program, which carries a katran's
// health checks to the reals inside the tunnel, and its map of marks:
// loaded by this process (LoadHealthCheck) or found through the program
// attached to the uplink (OpenHealthCheck).
type HealthCheck struct {
	objs healthcheckObjects
}

// Tunnel is where the checks of one mark go: an outer header Src->Dst
// (Dst the real's tunnel address, Src the balancer's address of the same
// family). An IPv4 Dst carries IPv4 checks only.
type Tunnel struct {
	Src, Dst netip.Addr
}

// LoadHealthCheck loads tc_healthcheck with no tunnels: it passes every
// packet until SetTunnels gives it some.
func LoadHealthCheck() (*HealthCheck, error) {
	spec, err := loadHealthcheck()
	if err != nil {
		return nil, err
	}
	h := &HealthCheck{}
	if err := loadObjects("health check", spec, &h.objs); err != nil {
		return nil, err
	}
	return h, nil
}

// OpenHealthCheck finds the map of a loaded tc_healthcheck through the
// program's own map references, as OpenBalancer does. prog stays the
// caller's.
func OpenHealthCheck(prog *ebpf.Program) (*HealthCheck, error) {
	info, err := prog.Info()
	if err != nil {
		return nil, fmt.Errorf("open health check: %w", err)
	}
	if !NameIs(info.Name, HealthCheckName) {
		return nil, fmt.Errorf("open health check: program %q is not %s", info.Name, HealthCheckName)
	}
	ids, ok := info.MapIDs()
	if !ok || len(ids) != 1 {
		return nil, fmt.Errorf("open health check: program has %d maps, want 1: %w", len(ids), ErrOtherBuild)
	}
	m, err := ebpf.NewMapFromID(ids[0])
	if err != nil {
		return nil, fmt.Errorf("open health check: map %d: %w", ids[0], err)
	}
	defer m.Close()
	spec, err := loadHealthcheck()
	if err != nil {
		return nil, err
	}
	h := &HealthCheck{}
	opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{healthcheckMapHcTunnels: m}}
	if err := spec.LoadAndAssign(&h.objs.healthcheckMaps, opts); err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("open health check: %w (%v)", ErrOtherBuild, err)
		}
		return nil, fmt.Errorf("open health check: %w", err)
	}
	if h.objs.TcHealthcheck, err = prog.Clone(); err != nil {
		h.objs.Close()
		return nil, fmt.Errorf("open health check: %w", err)
	}
	return h, nil
}

// SetTunnels makes the map hold exactly tunnels, by mark, and reports how
// many entries it changed. Mark 0 is no mark and cannot be used.
func (h *HealthCheck) SetTunnels(tunnels map[uint32]Tunnel) (int, error) {
	for mark, t := range tunnels {
		switch {
		case mark == 0:
			return 0, errors.New("health check tunnel: mark 0 is no mark")
		case !t.Src.IsValid() || !t.Dst.IsValid() || t.Src.Is4() != t.Dst.Is4():
			return 0, fmt.Errorf("health check tunnel %d: %s -> %s: want two addresses of one family", mark, t.Src, t.Dst)
		}
	}
	current, err := h.Tunnels()
	if err != nil {
		return 0, err
	}
	changed := 0
	for mark, t := range tunnels {
		if old, ok := current[mark]; ok && old == t {
			continue
		}
		v := healthcheckHcTunnel{Src: addrWords(t.Src), Dst: addrWords(t.Dst)}
		if err := h.objs.HcTunnels.Put(mark, v); err != nil {
			return changed, fmt.Errorf("health check tunnel %d: %w", mark, err)
		}
		changed++
	}
	for mark := range current {
		if _, ok := tunnels[mark]; !ok {
			if err := h.objs.HcTunnels.Delete(mark); err != nil {
				return changed, fmt.Errorf("health check tunnel %d: %w", mark, err)
			}
			changed++
		}
	}
	return changed, nil
}

// Tunnels reads the map back.
func (h *HealthCheck) Tunnels() (map[uint32]Tunnel, error) {
	out := map[uint32]Tunnel{}
	var mark uint32
	var v healthcheckHcTunnel
	it := h.objs.HcTunnels.Iterate()
	for it.Next(&mark, &v) {
		out[mark] = Tunnel{Src: addrFromWords(v.Src), Dst: addrFromWords(v.Dst)}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read health check tunnels: %w", err)
	}
	return out, nil
}

// Program returns tc_healthcheck, for attaching to TC egress.
func (h *HealthCheck) Program() *ebpf.Program {
	return h.objs.TcHealthcheck
}

// Close releases the program and map. An attached program stays attached.
func (h *HealthCheck) Close() error {
	return h.objs.Close()
}
