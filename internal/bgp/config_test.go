package bgp

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func katranConfig() Config {
	return Config{
		Node: "katran1", Role: RoleAnnounce, ASN: 4200000001, RouterID: netip.MustParseAddr("10.0.1.2"),
		ListenPort: 179, Hold: 3, Keepalive: 1, StatusAddr: DefaultStatusAddr,
		Peers:    []Peer{{Addr: netip.MustParseAddr("10.0.1.1"), ASN: 4200000000, Node: "router"}},
		Announce: []netip.Prefix{netip.MustParsePrefix("192.168.10.1/32"), netip.MustParsePrefix("2001:db8::10/128")},
		NextHop4: netip.MustParseAddr("10.0.1.2"), NextHop6: netip.MustParseAddr("fd00:1::2"),
		Uplink: "eth0",
	}
}

func routerConfig() Config {
	return Config{
		Node: "router", Role: RoleLearn, ASN: 4200000000, RouterID: netip.MustParseAddr("10.0.1.1"),
		ListenPort: 179, Hold: 3, Keepalive: 1, StatusAddr: DefaultStatusAddr,
		Peers: []Peer{
			{Addr: netip.MustParseAddr("10.0.1.2"), ASN: 4200000001, Node: "katran1"},
			{Addr: netip.MustParseAddr("10.0.2.2"), ASN: 4200000002, Node: "katran2", Port: 1179},
		},
		Accept: []netip.Prefix{netip.MustParsePrefix("192.168.10.1/32"), netip.MustParsePrefix("2001:db8::10/128")},
	}
}

// The lab writes a Config with json.Marshal, the speaker reads it with
// ParseConfig: what arrives is what was sent.
func TestConfigJSONRoundTrip(t *testing.T) {
	for _, want := range []Config{katranConfig(), routerConfig()} {
		data, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseConfig(data)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
}

func TestParseConfigDefaults(t *testing.T) {
	got, err := ParseConfig([]byte(`{"node":"r","role":"learn","asn":65000,"router_id":"10.0.0.1",
		"peers":[{"addr":"10.0.0.2","asn":65001}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.ListenPort != 179 || got.Hold != 3 || got.Keepalive != 1 || got.StatusAddr != "127.0.0.1:50179" {
		t.Errorf("defaults: %+v", got)
	}
}

func TestParseConfigRefusesUnknownFieldsAndTrailingData(t *testing.T) {
	for _, in := range []string{
		`{"node":"r","role":"learn","asn":65000,"router_id":"10.0.0.1","peers":[{"addr":"10.0.0.2","asn":65001}],"holdtime":3}`,
		`{"node":"r","role":"learn","asn":65000,"router_id":"10.0.0.1","peers":[{"addr":"10.0.0.2","asn":65001}]} {}`,
		`{"asn":"x"}`,
	} {
		if _, err := ParseConfig([]byte(in)); err == nil {
			t.Errorf("%s: accepted", in)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string // in the error; "" means valid
	}{
		{"katran", func(*Config) {}, ""},
		{"hold 3 keepalive 1", func(c *Config) { c.Hold, c.Keepalive = 3, 1 }, ""},
		{"hold 90 keepalive 30", func(c *Config) { c.Hold, c.Keepalive = 90, 30 }, ""},
		{"asn 0", func(c *Config) { c.ASN = 0 }, "asn: 0 is reserved"},
		{"as_trans", func(c *Config) { c.ASN = 23456 }, "asn: 23456 is reserved"},
		{"peer asn 0", func(c *Config) { c.Peers[0].ASN = 0 }, "peers[0].asn: 0 is reserved"},
		{"hold 0", func(c *Config) { c.Hold = 0 }, "hold: 0 (no keepalives) is not supported"},
		{"hold 1", func(c *Config) { c.Hold = 1 }, "hold: 1 s"},
		{"hold 2", func(c *Config) { c.Hold = 2 }, "hold: 2 s"},
		{"keepalive over a third", func(c *Config) { c.Hold, c.Keepalive = 9, 4 }, "keepalive: 4 s"},
		{"keepalive 0", func(c *Config) { c.Keepalive = 0 }, "keepalive: 0 s"},
		{"router id v6", func(c *Config) { c.RouterID = netip.MustParseAddr("fd00::1") }, "router_id: fd00::1 is not an IPv4 address"},
		{"no router id", func(c *Config) { c.RouterID = netip.Addr{} }, "router_id: missing"},
		{"port", func(c *Config) { c.ListenPort = 0 }, "listen_port: 0"},
		{"no listen", func(c *Config) { c.ListenPort = -1 }, ""},
		{"status addr", func(c *Config) { c.StatusAddr = "localhost" }, "status_addr"},
		{"no peers", func(c *Config) { c.Peers = nil }, "peers: none"},
		{"peer twice", func(c *Config) { c.Peers = append(c.Peers, c.Peers[0]) }, "peers[1].addr: 10.0.1.1 is given twice"},
		{"role", func(c *Config) { c.Role = "reflect" }, `role: "reflect"`},
		{"no uplink", func(c *Config) { c.Uplink = "" }, "uplink: missing"},
		{"announce a subnet", func(c *Config) { c.Announce[0] = netip.MustParsePrefix("192.168.10.0/24") }, "announce[0]: 192.168.10.0/24 is not a /32 or /128"},
		{"no v4 next hop", func(c *Config) { c.NextHop4 = netip.Addr{} }, "announce[0]: 192.168.10.1/32 needs next_hop4"},
		{"no v6 next hop", func(c *Config) { c.NextHop6 = netip.MustParseAddr("10.0.1.2") }, "announce[1]: 2001:db8::10/128 needs next_hop6"},
		{"katran accepts", func(c *Config) { c.Accept = c.Announce }, "accept: a \"announce\" speaker"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := katranConfig()
			c.edit(&cfg)
			err := cfg.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("accepted, want %q", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func TestValidateRouter(t *testing.T) {
	cfg := routerConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Accept = append(cfg.Accept, netip.MustParsePrefix("0.0.0.0/0"))
	cfg.Announce = []netip.Prefix{netip.MustParsePrefix("192.168.10.1/32")}
	err := cfg.Validate()
	for _, want := range []string{"accept[2]: 0.0.0.0/0 is not a /32 or /128", `announce: a "learn" speaker announces nothing`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
