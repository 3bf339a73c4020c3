package echo

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const h = "[real 10.111.222.11] ('10.111.220.11', 40612): "
	reference := Header{
		Real:     "real",
		RealAddr: netip.MustParseAddr("10.111.222.11"),
		Client:   netip.MustParseAddrPort("10.111.220.11:40612"),
	}
	for _, tc := range []struct {
		name        string
		reply       string
		want        Header
		wantPayload string
		wantErr     string
	}{
		{name: "interactive line", reply: h + "hello\n", want: reference, wantPayload: "hello\n"},
		{name: "line split over two reads", reply: h + "hel" + h + "lo\n", want: reference, wantPayload: "hello\n"},
		{name: "many lines in one read", reply: h + "a\nb\n" + h + "c\n", want: reference, wantPayload: "a\nb\nc\n"},
		{name: "header alone", reply: h, want: reference, wantPayload: ""},
		{name: "udp datagram", reply: "[real2 10.111.222.12] ('10.111.220.11', 1): ping", want: Header{
			Real: "real2", RealAddr: netip.MustParseAddr("10.111.222.12"), Client: netip.MustParseAddrPort("10.111.220.11:1"),
		}, wantPayload: "ping"},
		{name: "ipv6", reply: "[r fd00::1] ('fd00::2', 65535): x", want: Header{
			Real: "r", RealAddr: netip.MustParseAddr("fd00::1"), Client: netip.MustParseAddrPort("[fd00::2]:65535"),
		}, wantPayload: "x"},
		{name: "another real's header is payload", reply: h + "[real2 10.111.222.12] ('10.111.220.11', 40612): x", want: reference,
			wantPayload: "[real2 10.111.222.12] ('10.111.220.11', 40612): x"},
		{name: "no header", reply: "hello\n", wantErr: "no header"},
		{name: "empty", reply: "", wantErr: "no header"},
		{name: "no real address", reply: "[real] ('10.111.220.11', 1): x", wantErr: "want [NAME ADDRESS]"},
		{name: "bad real address", reply: "[real 10.111.222] ('10.111.220.11', 1): x", wantErr: "real address"},
		{name: "bad client address", reply: "[real 10.111.222.11] ('client', 1): x", wantErr: "client address"},
		{name: "port out of range", reply: "[real 10.111.222.11] ('10.111.220.11', 65536): x", wantErr: "client port"},
		{name: "truncated", reply: "[real 10.111.222.11] ('10.111.220.11', 4061", wantErr: "no client port"},
		{name: "not the service's spelling", reply: "[real 10.111.222.11] ('10.111.220.11', 0040612): x", wantErr: "not as the service writes it"},
		{name: "header end past the search bound", reply: "[" + strings.Repeat("n", maxHeader) + " 10.1.1.1] ('10.1.1.2', 1): ", wantErr: `no "] ('"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Parse([]byte(tc.reply))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want one about %q", tc.reply, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Header != tc.want || string(a.Payload) != tc.wantPayload {
				t.Errorf("Parse(%q) = %+v %q, want %+v %q", tc.reply, a.Header, a.Payload, tc.want, tc.wantPayload)
			}
		})
	}
}

// TestHeaderRoundTrip: what the service writes, the parser reads back,
// including a client address the socket reports as IPv4-mapped IPv6.
func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []Header{
		{Real: "real", RealAddr: netip.MustParseAddr("10.111.222.11"), Client: netip.MustParseAddrPort("10.111.220.11:40612")},
		{Real: "real-64", RealAddr: netip.MustParseAddr("fd00:222::40"), Client: netip.MustParseAddrPort("[fd00:220::11]:1")},
	} {
		mapped := h
		if h.Client.Addr().Is4() {
			mapped.Client = netip.AddrPortFrom(netip.AddrFrom16(h.Client.Addr().As16()), h.Client.Port())
		}
		payload := []byte("payload\n")
		a, err := Parse(append(mapped.Append(nil), payload...))
		if err != nil {
			t.Fatal(err)
		}
		if a.Header != h || !bytes.Equal(a.Payload, payload) {
			t.Errorf("round trip of %+v: got %+v %q", h, a.Header, a.Payload)
		}
	}
}
