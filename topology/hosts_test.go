package topology_test

import (
	"os"
	"strings"
	"testing"

	"github.com/dsrlab/dsrlab/topology"
)

func TestParseSSHEngine(t *testing.T) {
	ok := []struct {
		addr string
		want topology.SSHEngine
	}{
		{"ssh://h2", topology.SSHEngine{Host: "h2", Socket: "/var/run/docker.sock"}},
		{"ssh://root@172.31.255.3/run/docker-e2h3.sock", topology.SSHEngine{User: "root", Host: "172.31.255.3", Socket: "/run/docker-e2h3.sock"}},
		{"ssh://dsr@h2.example:2222/run/user/1000/docker.sock", topology.SSHEngine{User: "dsr", Host: "h2.example", Port: 2222, Socket: "/run/user/1000/docker.sock"}},
		{"ssh://[fd00::2]:22", topology.SSHEngine{Host: "fd00::2", Port: 22, Socket: "/var/run/docker.sock"}},
		{"ssh://me@h2/run/my%20engine.sock", topology.SSHEngine{User: "me", Host: "h2", Socket: "/run/my engine.sock"}},
	}
	for _, c := range ok {
		got, err := topology.ParseSSHEngine(c.addr)
		if err != nil || got != c.want {
			t.Errorf("ParseSSHEngine(%q) = %+v, %v; want %+v", c.addr, got, err, c.want)
		}
	}
	bad := []struct{ addr, msg string }{
		{"ssh://h2?timeout=5", "query strings are not supported"},
		{"ssh://h2/run/docker.sock?", "query strings are not supported"},
		{"ssh://h2#x", "fragments are not supported"},
		{"ssh://h2:0", "port 0 is out of range 1..65535"},
		{"ssh://h2:65536", "port 65536 is out of range"},
		{"ssh://h2:", "empty port"},
		{"ssh://h2:ssh", `invalid port ":ssh"`},
		{"ssh:///run/docker.sock", "no host"},
		{"ssh://@h2", "empty user name"},
		{"ssh://me:secret@h2", "passwords are not supported"},
		{"ssh:h2", "want ssh://[USER@]HOST[:PORT][/SOCKET]"},
		{"ssh://h2/", `"/" is not a clean absolute path`},
		{"ssh://h2/run/../docker.sock", "is not a clean absolute path"},
		{"tcp://h2:2376", `the scheme is "tcp"`},
	}
	for _, c := range bad {
		_, err := topology.ParseSSHEngine(c.addr)
		if err == nil || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), c.addr) {
			t.Errorf("ParseSSHEngine(%q): %v, want an error naming the address and saying %q", c.addr, err, c.msg)
		}
	}
}

func TestSSHEngineHosts(t *testing.T) {
	topo := mustLoad(t, "testdata/valid/multihost-ssh.yaml")
	for name, want := range map[string]string{
		"h2": "ssh://dsr@h2.example:2222/run/user/1000/docker.sock",
		"h3": "ssh://h3.example",
	} {
		h := topo.Host(name)
		if h == nil || h.Docker != want || h.TLS != nil {
			t.Errorf("host %s = %+v, want engine %s without TLS", name, h, want)
		}
	}
	if e, _ := topology.ParseSSHEngine(topo.Host("h2").Docker); e.Address() != "h2.example:2222" {
		t.Errorf("h2's SSH server is %q", e.Address())
	}
	if e, _ := topology.ParseSSHEngine("ssh://[fd00::2]"); e.Address() != "[fd00::2]:22" {
		t.Errorf("an IPv6 SSH server is %q", e.Address())
	}
}

// Advice warns of a user's balancer behind a link between hosts too narrow
// for an encapsulated full-size packet, and of nothing else.
func TestAdviceOnNarrowLinksBetweenHosts(t *testing.T) {
	data, err := os.ReadFile("testdata/valid/multihost.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ownBalancer := func(s string) string {
		return strings.Replace(s, "katran: {kind: katran}", "katran: {kind: katran, program: {object: /opt/xdp/lb.o}}", 1)
	}
	jumbo := func(s string) string {
		s = strings.Replace(s, "underlay: 172.31.255.1}", "underlay: 172.31.255.1, mtu: 9000}", 1)
		return strings.Replace(s, "underlay: 172.31.255.2}", "underlay: 172.31.255.2, mtu: 9000}", 1)
	}
	ipv6VIP := func(s string) string {
		s = strings.Replace(s, `    ipv4: ["10.111.220.11/24", "10.111.220.12/24"]`, `    ipv4: ["10.111.220.11/24", "10.111.220.12/24"]
    ipv6: ["fd00:220::11/64", "fd00:220::12/64"]`, 1)
		s = strings.Replace(s, `    ipv4: ["10.111.221.12/24", "10.111.221.11/24"]`, `    ipv4: ["10.111.221.12/24", "10.111.221.11/24"]
    ipv6: ["fd00:221::12/64", "fd00:221::11/64"]`, 1)
		s = strings.Replace(s, `    ipv4: ["10.111.222.12/24", "10.111.222.11/24"]`, `    ipv4: ["10.111.222.12/24", "10.111.222.11/24"]
    ipv6: ["fd00:222::12/64", "fd00:222::11/64"]`, 1)
		return s + "  - {address: \"fd00:10::1\", port: 50007, lb: katran, reals: [real]}\n"
	}
	for _, tc := range []struct {
		name string
		edit []func(string) string
		want string // "" for no advice
	}{
		{"dsrlab's balancer", nil, ""},
		{"own balancer, 1500 underlay", []func(string) string{ownBalancer},
			"link router:eth1 <-> real:eth0 crosses hosts with MTU 1450, but a client's 1500-byte packet takes 1520 once encapsulated: the program on katran must"},
		{"own balancer, IPv6 VIP", []func(string) string{ownBalancer, ipv6VIP}, "takes 1540 once encapsulated"},
		{"own balancer, jumbo underlay", []func(string) string{ownBalancer, jumbo}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := string(data)
			for _, e := range tc.edit {
				text = e(text)
			}
			topo, err := topology.Parse([]byte(text), "multihost.yaml")
			if err != nil {
				t.Fatal(err)
			}
			advice := strings.Join(topo.Advice(), "\n")
			if tc.want == "" && advice != "" || !strings.Contains(advice, tc.want) {
				t.Errorf("advice %q, want %q", advice, tc.want)
			}
		})
	}
}
