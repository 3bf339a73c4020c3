package trace

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dsrlab/dsrlab/internal/capture"
)

// Result is a whole trace: the flow, its hops, the kernel's drops and the
// verdict.
type Result struct {
	Flow  *Flow
	Hops  []*Hop
	Drops []Drop
	// NotUp names the lab's interfaces that were not up ("node:iface
	// down", "no carrier", "missing", "went down").
	NotUp []string
	// DropsOff says why kernel drops could not be watched, if they could
	// not.
	DropsOff string
	Probe    Probe
	Verdict  Verdict
}

// Table prints the hops one a line, the drops and the verdict. MACs only
// when verbose.
func (r *Result) Table(w io.Writer, verbose bool) error {
	f := r.Flow
	fmt.Fprintf(w, "trace %s/%s from %s (%s), %s VIP served by %s\n", f.Dst, f.VIP.Proto, f.Client.Name, f.Local, f.VIP.Mode, f.VIP.LBNames())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tTIME\tSTEP\tHOP\tSEEN\tPACKET")
	oneSided := false
	// A routing loop is shown once round; the rounds after it as one line.
	loop, looped := FindLoop(r.Hops)
	for i := 0; i < len(r.Hops); i++ {
		h := r.Hops[i]
		if looped && i == loop.Start+loop.Len && loop.Count > 1 {
			skip := (loop.Count - 1) * loop.Len
			fmt.Fprintf(tw, "%d-%d\t\t(loop)\t\t\t%s: the same %d hops %d more times (TTL %d → %d)\n",
				h.N, h.N+skip-1, loop.path(r.Hops), loop.Len, loop.Count-1, loop.FirstTTL, loop.LastTTL)
			i += skip - 1
			continue
		}
		oneSided = oneSided || h.Out == nil || h.In == nil
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s %s → %s %s\t%s\t%s\n", h.N, r.offset(h), h.Step,
			h.From.Node.Name, h.From.Name, h.To.Node.Name, h.To.Name, seen(h), h.Frame().String(verbose))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if oneSided {
		fmt.Fprintln(w, "(out: seen leaving, in: seen arriving. XDP acts before packet sockets: a frame an XDP program\n"+
			" sends back out (XDP_TX) is seen only arriving at the peer, one it drops only leaving the sender.)")
	}
	if len(r.Drops) > 0 {
		fmt.Fprintln(w, "kernel drops in the lab:")
		for _, d := range r.Drops {
			line := "  " + d.String()
			if d.Packet != "" {
				line += ": " + d.Packet
			}
			fmt.Fprintln(w, line)
		}
	}
	if len(r.NotUp) > 0 {
		fmt.Fprintf(w, "interfaces not up: %s\n", strings.Join(r.NotUp, ", "))
	}
	if r.DropsOff != "" {
		fmt.Fprintf(w, "kernel drops not watched: %s\n", r.DropsOff)
	}
	if r.Probe.Answer != "" {
		fmt.Fprintf(w, "answer: %s\n", strings.TrimRight(r.Probe.Answer, "\n"))
	}
	result := "FAIL"
	if r.Verdict.Pass {
		result = "PASS"
	}
	_, err := fmt.Fprintf(w, "%s: %s\n", result, r.Verdict.Summary)
	return err
}

// offset is the hop's time after the first hop, in milliseconds.
func (r *Result) offset(h *Hop) string {
	return fmt.Sprintf("%.3fms", float64(h.Time().Sub(r.Hops[0].Time()))/float64(time.Millisecond))
}

func seen(h *Hop) string {
	var s []string
	if h.Out != nil {
		s = append(s, "out")
	}
	if h.In != nil {
		s = append(s, "in")
	}
	if h.Decapsulated {
		s = append(s, "decapsulated")
	}
	return strings.Join(s, "+")
}

type jsonHeader struct {
	Src      netip.Addr `json:"src"`
	Dst      netip.Addr `json:"dst"`
	Proto    uint8      `json:"proto"`
	TTL      uint8      `json:"ttl"`
	SrcPort  uint16     `json:"src_port,omitempty"`
	DstPort  uint16     `json:"dst_port,omitempty"`
	TCPFlags string     `json:"tcp_flags,omitempty"`
	Payload  int        `json:"payload"`
}

type jsonHop struct {
	N            int          `json:"n"`
	Step         string       `json:"step"`
	Class        Class        `json:"class"`
	From         string       `json:"from"` // node:iface
	To           string       `json:"to"`
	Time         time.Time    `json:"time"`
	SeenOut      bool         `json:"seen_out"`
	SeenIn       bool         `json:"seen_in"`
	Decapsulated bool         `json:"decapsulated,omitempty"`
	Packet       string       `json:"packet"`
	SrcMAC       string       `json:"src_mac,omitempty"`
	DstMAC       string       `json:"dst_mac,omitempty"`
	IP           []jsonHeader `json:"ip"` // outermost first
	// Arrived is the packet as it entered To when that differs (decapsulated).
	Arrived []jsonHeader `json:"arrived,omitempty"`
}

func headers(fr capture.Frame) []jsonHeader {
	var out []jsonHeader
	for _, h := range fr.IP {
		j := jsonHeader{Src: h.Src, Dst: h.Dst, Proto: h.Proto, TTL: h.TTL, Payload: h.Payload}
		if h.Transport {
			j.SrcPort, j.DstPort = h.SrcPort, h.DstPort
			if h.Proto == 6 {
				j.TCPFlags = capture.TCPFlags(h.TCPFlags)
			}
		}
		out = append(out, j)
	}
	return out
}

// JSON writes the result as one indented object, for scripts.
func (r *Result) JSON(w io.Writer) error {
	f := r.Flow
	out := struct {
		VIP      string    `json:"vip"`
		Proto    string    `json:"proto"`
		Mode     string    `json:"mode"`
		Client   string    `json:"client"`
		Local    string    `json:"local"`
		Probe    Probe     `json:"probe"`
		Hops     []jsonHop `json:"hops"`
		Drops    []Drop    `json:"drops"`
		NotUp    []string  `json:"not_up,omitempty"`
		DropsOff string    `json:"drops_unavailable,omitempty"`
		Verdict  Verdict   `json:"verdict"`
	}{VIP: f.Dst.String(), Proto: string(f.VIP.Proto), Mode: string(f.VIP.Mode), Client: f.Client.Name,
		Local: f.Local.String(), Probe: r.Probe, Hops: []jsonHop{}, Drops: r.Drops, NotUp: r.NotUp, DropsOff: r.DropsOff, Verdict: r.Verdict}
	if out.Drops == nil {
		out.Drops = []Drop{}
	}
	for _, h := range r.Hops {
		fr := h.Frame()
		j := jsonHop{N: h.N, Step: h.Step, Class: h.Class, From: h.From.String(), To: h.To.String(), Time: h.Time(),
			SeenOut: h.Out != nil, SeenIn: h.In != nil, Decapsulated: h.Decapsulated,
			Packet: fr.String(false), IP: headers(fr)}
		if fr.SrcMAC != nil {
			j.SrcMAC, j.DstMAC = fr.SrcMAC.String(), fr.DstMAC.String()
		}
		if h.Decapsulated {
			j.Arrived = headers(h.In.Frame)
		}
		out.Hops = append(out.Hops, j)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// Mermaid draws the observed hops as a sequence diagram, one participant
// per node in the order the flow met them: the reference README's flow,
// from the packets themselves.
func (r *Result) Mermaid(w io.Writer) error {
	var b strings.Builder
	b.WriteString("sequenceDiagram\n")
	ids := map[string]string{}
	participant := func(node string) string {
		if id, ok := ids[node]; ok {
			return id
		}
		id := fmt.Sprintf("p%d", len(ids))
		ids[node] = id
		fmt.Fprintf(&b, "    participant %s as %s\n", id, node)
		return id
	}
	participant(r.Flow.Client.Name)
	for _, h := range r.Hops {
		participant(h.From.Node.Name)
		participant(h.To.Node.Name)
	}
	for _, h := range r.Hops {
		arrow := "->>"
		if h.Class == ClassTunnel {
			arrow = "-->>"
		}
		lines := append([]string{fmt.Sprintf("%d. %s (%s → %s)", h.N, h.Step, h.From.Name, h.To.Name)}, packetLines(h.Frame())...)
		if h.Decapsulated {
			lines = append(lines, "(decapsulated on arrival)")
		}
		fmt.Fprintf(&b, "    %s%s%s: %s\n", ids[h.From.Node.Name], arrow, ids[h.To.Node.Name], mermaidText(strings.Join(lines, "<br/>")))
	}
	for _, d := range r.Drops {
		id := participant(d.Node)
		fmt.Fprintf(&b, "    Note over %s: dropped: %s\n", id, mermaidText(strings.TrimPrefix(d.String(), d.Node+" ")))
	}
	result := "FAIL"
	if r.Verdict.Pass {
		result = "PASS"
	}
	first, last := "p0", fmt.Sprintf("p%d", len(ids)-1)
	span := first
	if last != first {
		span += "," + last
	}
	fmt.Fprintf(&b, "    Note over %s: %s: %s\n", span, result, mermaidText(r.Verdict.Summary))
	_, err := io.WriteString(w, b.String())
	return err
}

// packetLines describe a packet the way the reference README's flow does:
// "IP: a → b", or the outer and inner headers of a tunnel.
func packetLines(fr capture.Frame) []string {
	if len(fr.IP) == 0 {
		return nil
	}
	one := func(h capture.IPHeader) string {
		if !h.Transport || h.Proto == 1 || h.Proto == 58 {
			return fmt.Sprintf("%s → %s %s", h.Src, h.Dst, protoOf(h))
		}
		s := fmt.Sprintf("%s → %s %s", netip.AddrPortFrom(h.Src, h.SrcPort), netip.AddrPortFrom(h.Dst, h.DstPort), protoOf(h))
		if h.Proto == 6 {
			s += " " + capture.TCPFlags(h.TCPFlags)
		}
		return s
	}
	if len(fr.IP) == 1 {
		return []string{"IP: " + one(fr.IP[0])}
	}
	o := fr.IP[0]
	return []string{fmt.Sprintf("Outer: %s → %s", o.Src, o.Dst), "Inner: " + one(fr.IP[len(fr.IP)-1])}
}

func protoOf(h capture.IPHeader) string {
	switch h.Proto {
	case 1:
		return "ICMP"
	case 58:
		return "ICMP6"
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	}
	return fmt.Sprintf("proto %d", h.Proto)
}

// mermaidText keeps a label from ending the statement (;) or starting an
// entity code (#).
func mermaidText(s string) string {
	return strings.NewReplacer(";", ",", "#", "No.", "\n", " ").Replace(s)
}
