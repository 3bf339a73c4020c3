package echo

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Header is what the service puts before each answer, in the spirit of the
// reference lab's Python server: "[real 10.111.222.11] ('10.111.220.11', 40612): ".
type Header struct {
	Real     string         // the real's node name
	RealAddr netip.Addr     // the real's own (tunnel) address
	Client   netip.AddrPort // the client as the real saw it
}

// Append formats the header onto b.
func (h Header) Append(b []byte) []byte {
	return fmt.Appendf(b, "[%s %s] ('%s', %d): ", h.Real, h.RealAddr, h.Client.Addr().Unmap(), h.Client.Port())
}

func (h Header) String() string { return string(h.Append(nil)) }

// maxHeader bounds the search for a header's end, so a reply that does not
// start with one is rejected without scanning its whole payload.
const maxHeader = 256

// Answer is a parsed reply of the service.
type Answer struct {
	Header
	Payload []byte // what the service echoed, with every header taken out
}

// Parse reads a reply that starts with a header. A TCP reply carries the
// same header again at each read the service made, and where the reads fell
// is not known to the client, so every later copy of the first header is
// taken out of the payload: a payload that itself contains those exact
// bytes loses them too (the stream has no other framing). Payload is the
// bytes sent, in order, when the reply is complete.
func Parse(reply []byte) (Answer, error) {
	h, n, err := parseHeader(reply)
	if err != nil {
		return Answer{}, fmt.Errorf("echo answer %.60q: %w", reply, err)
	}
	return Answer{Header: h, Payload: bytes.ReplaceAll(reply[n:], reply[:n], nil)}, nil
}

// parseHeader returns the header at the start of b and its length.
func parseHeader(b []byte) (Header, int, error) {
	s := string(b[:min(len(b), maxHeader)])
	var h Header
	rest, ok := strings.CutPrefix(s, "[")
	if !ok {
		return h, 0, fmt.Errorf("no header")
	}
	inner, rest, ok := strings.Cut(rest, "] ('")
	if !ok {
		return h, 0, fmt.Errorf("header: no \"] ('\"")
	}
	name, addr, ok := strings.Cut(inner, " ")
	if !ok || name == "" {
		return h, 0, fmt.Errorf("header: want [NAME ADDRESS]")
	}
	realAddr, err := netip.ParseAddr(addr)
	if err != nil {
		return h, 0, fmt.Errorf("header: real address: %w", err)
	}
	client, rest, ok := strings.Cut(rest, "', ")
	if !ok {
		return h, 0, fmt.Errorf("header: no client address")
	}
	clientAddr, err := netip.ParseAddr(client)
	if err != nil {
		return h, 0, fmt.Errorf("header: client address: %w", err)
	}
	port, rest, ok := strings.Cut(rest, "): ")
	if !ok {
		return h, 0, fmt.Errorf("header: no client port")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return h, 0, fmt.Errorf("header: client port: %w", err)
	}
	h = Header{Real: name, RealAddr: realAddr, Client: netip.AddrPortFrom(clientAddr, uint16(p))}
	n := len(s) - len(rest)
	// Only the service's own spelling is a header, so that every later copy
	// of it in the reply is recognised byte for byte.
	if h.String() != s[:n] {
		return Header{}, 0, fmt.Errorf("header %q is not as the service writes it", s[:n])
	}
	return h, n, nil
}
