package topology_test

import (
	"bytes"
	"errors"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dsrlab/dsrlab/topology"
)

func mustLoad(t *testing.T, path string) *topology.Topology {
	t.Helper()
	topo, err := topology.Load(path)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", path, err)
	}
	return topo
}

func mustNode(t *testing.T, topo *topology.Topology, name string) *topology.Node {
	t.Helper()
	n := topo.Node(name)
	if n == nil {
		t.Fatalf("no node %q", name)
	}
	return n
}

func addr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestReferenceLab(t *testing.T) {
	topo := mustLoad(t, "../labs/dsr.yaml")
	if topo.File != "../labs/dsr.yaml" {
		t.Errorf("File = %q", topo.File)
	}

	var names []string
	for _, n := range topo.Nodes {
		names = append(names, n.ContainerName)
		if n.Image != topology.DefaultImage {
			t.Errorf("%s: Image = %q, want %q", n.Name, n.Image, topology.DefaultImage)
		}
	}
	if want := []string{"client", "katran", "real", "router"}; !slices.Equal(names, want) {
		t.Errorf("container names = %v, want %v", names, want)
	}

	for node, gw := range map[string]string{"client": "10.111.220.12", "katran": "10.111.221.12", "real": "10.111.222.12"} {
		if got := mustNode(t, topo, node).Gateway; got != addr(gw) {
			t.Errorf("%s: Gateway = %v, want %s", node, got, gw)
		}
	}

	router := mustNode(t, topo, "router")
	if router.Gateway.IsValid() {
		t.Errorf("router: Gateway = %v, want none", router.Gateway)
	}
	wantRoutes := []topology.Route{{Dst: prefix("192.168.10.1/32"), Via: addr("10.111.221.11")}}
	if !slices.Equal(router.Routes, wantRoutes) {
		t.Errorf("router: Routes = %v, want %v", router.Routes, wantRoutes)
	}
	wantSysctls := map[string]string{
		"net.ipv4.ip_forward":             "1",
		"net.ipv4.conf.all.rp_filter":     "0",
		"net.ipv4.conf.default.rp_filter": "0",
	}
	if !maps.Equal(router.Sysctls, wantSysctls) {
		t.Errorf("router: Sysctls = %v, want %v", router.Sysctls, wantSysctls)
	}

	katran := mustNode(t, topo, "katran")
	if katran.XDP != topology.XDPAuto {
		t.Errorf("katran: XDP = %q", katran.XDP)
	}
	if up := katran.Uplink(); up == nil || up.Peer.Node != router || up.Peer.Name != "eth0" {
		t.Errorf("katran: Uplink = %v, want the peer router:eth0", up)
	}
	real := mustNode(t, topo, "real")
	if real.Decap != topology.DecapAuto {
		t.Errorf("real: Decap = %q", real.Decap)
	}
	if up := real.Uplink(); up == nil || up.Addr != prefix("10.111.222.11/24") {
		t.Errorf("real: Uplink = %v, want real:eth0 10.111.222.11/24", up)
	}

	for i, want := range []int{1500, 3000, 3000} {
		l := topo.Links[i]
		if l.MTU != want || l.A.MTU != want || l.B.MTU != want {
			t.Errorf("links[%d]: MTU = %d (ends %d, %d), want %d", i, l.MTU, l.A.MTU, l.B.MTU, want)
		}
	}

	if len(topo.VIPs) != 1 || topo.VIPs[0].String() != "192.168.10.1:50007/tcp" {
		t.Fatalf("VIPs = %v", topo.VIPs)
	}
	if got := topo.VIPsServedBy(katran); !slices.Equal(got, topo.VIPs) {
		t.Errorf("VIPsServedBy(katran) = %v", got)
	}
	if got := topo.VIPsBackedBy(real); !slices.Equal(got, topo.VIPs) {
		t.Errorf("VIPsBackedBy(real) = %v", got)
	}
	if got := topo.VIPsBackedBy(katran); got != nil {
		t.Errorf("VIPsBackedBy(katran) = %v, want none", got)
	}
}

func TestMACs(t *testing.T) {
	first := mustLoad(t, "../labs/dsr.yaml")
	again := mustLoad(t, "../labs/dsr.yaml")
	seen := map[string]string{}
	for i, l := range first.Links {
		for j, ifc := range []*topology.Interface{l.A, l.B} {
			mac := ifc.MAC.String()
			if len(ifc.MAC) != 6 || ifc.MAC[0] != 0x02 {
				t.Errorf("%s: MAC %s is not locally administered unicast", ifc, mac)
			}
			if prev, dup := seen[mac]; dup {
				t.Errorf("%s and %s share MAC %s", prev, ifc, mac)
			}
			seen[mac] = ifc.String()
			other := []*topology.Interface{again.Links[i].A, again.Links[i].B}[j]
			if other.MAC.String() != mac {
				t.Errorf("%s: MAC %s, then %s", ifc, mac, other.MAC)
			}
		}
	}

	data, err := os.ReadFile("../labs/dsr.yaml")
	if err != nil {
		t.Fatal(err)
	}
	renamed, err := topology.Parse(bytes.Replace(data, []byte("name: dsr"), []byte("name: dsr2"), 1), "dsr2.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := first.Links[0].A.MAC, renamed.Links[0].A.MAC; bytes.Equal(a, b) {
		t.Errorf("labs dsr and dsr2 share MAC %s", a)
	}
}

func TestExplicitWins(t *testing.T) {
	topo := mustLoad(t, "testdata/valid/explicit.yaml")
	client := mustNode(t, topo, "client")
	if client.ContainerName != "lab1-client" {
		t.Errorf("client: ContainerName = %q", client.ContainerName)
	}
	if client.Image != "example/client" || client.Cmd != "sleep infinity" ||
		!maps.Equal(client.Env, map[string]string{"MODE": "test"}) || !slices.Equal(client.Exec, []string{"ip link show"}) {
		t.Errorf("client: Image %q, Cmd %q, Env %v, Exec %q", client.Image, client.Cmd, client.Env, client.Exec)
	}
	if client.Gateway != addr("10.0.0.254") {
		t.Errorf("client: Gateway = %v, want the explicit 10.0.0.254", client.Gateway)
	}
	if client.Sysctls != nil {
		t.Errorf("client: Sysctls = %v, want none", client.Sysctls)
	}

	router := mustNode(t, topo, "router")
	if router.Image != "example/base" {
		t.Errorf("router: Image = %q, want the default example/base", router.Image)
	}
	wantRoutes := []topology.Route{{Dst: prefix("192.168.10.1/32"), Via: addr("10.0.1.99")}}
	if !slices.Equal(router.Routes, wantRoutes) {
		t.Errorf("router: Routes = %v, want only the explicit %v", router.Routes, wantRoutes)
	}
	wantSysctls := map[string]string{
		"net.ipv4.ip_forward":             "1",
		"net.ipv4.conf.all.rp_filter":     "2",
		"net.ipv4.conf.default.rp_filter": "0",
		"net.core.somaxconn":              "1024",
	}
	if !maps.Equal(router.Sysctls, wantSysctls) {
		t.Errorf("router: Sysctls = %v, want %v", router.Sysctls, wantSysctls)
	}

	katran := mustNode(t, topo, "katran")
	if katran.Gateway.IsValid() {
		t.Errorf("katran: Gateway = %v, want none: it has an explicit default route", katran.Gateway)
	}
	if katran.XDP != topology.XDPGeneric {
		t.Errorf("katran: XDP = %q", katran.XDP)
	}
	if real := mustNode(t, topo, "real"); real.Decap != topology.DecapXDP || real.XDP != "" {
		t.Errorf("real: Decap = %q, XDP = %q", real.Decap, real.XDP)
	}

	for i, want := range []int{1400, 1500, topology.EncapMTU} {
		if got := topo.Links[i].MTU; got != want {
			t.Errorf("links[%d]: MTU = %d, want %d", i, got, want)
		}
	}
}

func TestSeveralVIPs(t *testing.T) {
	topo := mustLoad(t, "testdata/valid/two-katrans.yaml")
	wantRoutes := []topology.Route{
		{Dst: prefix("10.99.0.1/32"), Via: addr("10.0.1.1")},
		{Dst: prefix("10.99.0.2/32"), Via: addr("10.0.2.1")},
	}
	if got := mustNode(t, topo, "r").Routes; !slices.Equal(got, wantRoutes) {
		t.Errorf("r: Routes = %v, want %v", got, wantRoutes)
	}
	vipNames := func(vips []*topology.VIP) []string {
		var s []string
		for _, v := range vips {
			s = append(s, v.String())
		}
		return s
	}
	for _, tc := range []struct {
		node         string
		served, back []string
	}{
		{node: "k1", served: []string{"10.99.0.1:80/tcp", "10.99.0.1:53/udp"}},
		{node: "k2", served: []string{"10.99.0.2:80/tcp"}},
		{node: "s1", back: []string{"10.99.0.1:80/tcp", "10.99.0.1:53/udp"}},
		{node: "s2", back: []string{"10.99.0.1:80/tcp", "10.99.0.2:80/tcp"}},
	} {
		n := mustNode(t, topo, tc.node)
		if got := vipNames(topo.VIPsServedBy(n)); !slices.Equal(got, tc.served) {
			t.Errorf("VIPsServedBy(%s) = %v, want %v", tc.node, got, tc.served)
		}
		if got := vipNames(topo.VIPsBackedBy(n)); !slices.Equal(got, tc.back) {
			t.Errorf("VIPsBackedBy(%s) = %v, want %v", tc.node, got, tc.back)
		}
	}
	if got := mustNode(t, topo, "s2").Gateway; got != addr("10.0.4.2") {
		t.Errorf("s2: Gateway = %v, want 10.0.4.2 (a /31 link)", got)
	}
	var katrans []string
	for _, n := range topo.NodesOfKind(topology.KindKatran) {
		katrans = append(katrans, n.Name)
	}
	if !slices.Equal(katrans, []string{"k1", "k2"}) {
		t.Errorf("NodesOfKind(katran) = %v", katrans)
	}
	if topo.Node("nope") != nil {
		t.Error(`Node("nope") != nil`)
	}
}

func TestRouterNotConnectedToKatran(t *testing.T) {
	topo := mustLoad(t, "testdata/valid/two-routers.yaml")
	r1 := mustNode(t, topo, "r1")
	if len(r1.Routes) != 2 || r1.Gateway.IsValid() {
		t.Errorf("r1: Routes = %v, Gateway = %v; want only the explicit routes", r1.Routes, r1.Gateway)
	}
	wantRoutes := []topology.Route{
		{Dst: prefix("10.0.0.0/24"), Via: addr("10.0.9.1")},
		{Dst: prefix("192.168.10.1/32"), Via: addr("10.0.1.1")},
	}
	if got := mustNode(t, topo, "r2").Routes; !slices.Equal(got, wantRoutes) {
		t.Errorf("r2: Routes = %v, want %v", got, wantRoutes)
	}
	c := mustNode(t, topo, "c")
	if c.Gateway != addr("10.0.0.2") {
		t.Errorf("c: Gateway = %v, want 10.0.0.2", c.Gateway)
	}
	direct := topo.Links[4]
	if direct.A.Addr.IsValid() || direct.MTU != topology.EncapMTU {
		t.Errorf("c-k link: Addr %v, MTU %d; want no address, MTU %d", direct.A.Addr, direct.MTU, topology.EncapMTU)
	}
	if up := mustNode(t, topo, "k").Uplink(); up == nil || up.Name != "eth0" {
		t.Errorf("k: Uplink = %v, want k:eth0", up)
	}
}

func TestResolvedRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range append(files, "../labs/dsr.yaml") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			first, err := mustLoad(t, file).Resolved()
			if err != nil {
				t.Fatal(err)
			}
			reparsed, err := topology.Parse(first, "resolved.yaml")
			if err != nil {
				t.Fatalf("parse of Resolved():\n%v\n%s", err, first)
			}
			second, err := reparsed.Resolved()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first, second) {
				t.Errorf("Resolved() changed after a round trip:\n%s\nthen:\n%s", first, second)
			}
		})
	}
}

func TestResolvedShowsDerivedValues(t *testing.T) {
	out, err := mustLoad(t, "../labs/dsr.yaml").Resolved()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"client: # container client",
		"gateway: 10.111.220.12",
		"- dst: 192.168.10.1/32\n        via: 10.111.221.11",
		"net.ipv4.ip_forward: \"1\"",
		"- client:eth0 # mac 02:",
		"ipv4: [10.111.220.11/24, 10.111.220.12/24]\n    mtu: 1500",
		"xdp: auto",
		"decap: auto",
		"image: dsrlab/node",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("Resolved() lacks %q:\n%s", want, out)
		}
	}
}

func TestPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix, want string
	}{
		{prefix: "", want: "c"},
		{prefix: "lab1-", want: "lab1-c"},
		{prefix: "Lab.v2_", want: "Lab.v2_c"},
	} {
		doc := "name: p\nprefix: \"" + tc.prefix + "\"\nnodes:\n  c: {kind: client}\n"
		topo, err := topology.Parse([]byte(doc), "p.yaml")
		if err != nil {
			t.Errorf("prefix %q: %v", tc.prefix, err)
			continue
		}
		if got := topo.Node("c").ContainerName; got != tc.want {
			t.Errorf("prefix %q: ContainerName = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := topology.Load("testdata/does-not-exist.yaml"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want os.ErrNotExist", err)
	}
}

func TestEmptyFile(t *testing.T) {
	_, err := topology.Parse(nil, "empty.yaml")
	want := "empty.yaml: name: required\nempty.yaml: nodes: at least one node is required"
	if err == nil || err.Error() != want {
		t.Errorf("Parse(nil) = %v, want:\n%s", err, want)
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		err  topology.Error
		want string
	}{
		{
			err:  topology.Error{File: "labs/bad.yaml", Line: 14, Column: 15, Field: "links[1].ipv4[0]", Msg: `"10.0.0.1/33" is not a valid CIDR`},
			want: `labs/bad.yaml:14:15: links[1].ipv4[0]: "10.0.0.1/33" is not a valid CIDR`,
		},
		{
			err:  topology.Error{File: "bad.yaml", Line: 3, Msg: "did not find expected key"},
			want: "bad.yaml:3: did not find expected key",
		},
		{
			err:  topology.Error{File: "bad.yaml", Field: "name", Msg: "required"},
			want: "bad.yaml: name: required",
		},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestErrorListIsSortedByPosition(t *testing.T) {
	_, err := topology.Load("testdata/invalid/wrong-type.yaml")
	var list topology.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %v is not an ErrorList", err)
	}
	want := strings.Join([]string{
		`testdata/invalid/wrong-type.yaml:9:16: links[0].endpoints: expected a list, got a string "c:eth0"`,
		`testdata/invalid/wrong-type.yaml:13:10: links[1].mtu: expected an integer, got a string "fifteen hundred"`,
		`testdata/invalid/wrong-type.yaml:17:34: vips[0].port: expected an integer, got a string "http"`,
	}, "\n")
	if got := list.Error(); got != want {
		t.Errorf("ErrorList.Error() =\n%s\nwant:\n%s", got, want)
	}
}

// wantErr is one expected error: its field path, line, and a part of its
// message.
type wantErr struct {
	field string
	line  int
	msg   string
}

// invalidCases holds, for each fixture in testdata/invalid, the errors it
// must produce, in order.
var invalidCases = map[string][]wantErr{
	"unknown-field": {{"nodes.k.images", 6, `unknown field "images"`}, {"labels", 17, `unknown field "labels"`}},
	// yaml.v3 reports a syntax error at the line where the enclosing
	// construct starts, counted from 0 for parser errors: the unclosed
	// list is on line 10.
	"syntax-error": {{"", 9, "did not find expected ',' or ']'"}},
	"wrong-type": {
		{"links[0].endpoints", 9, "expected a list, got a string"},
		{"links[1].mtu", 13, "expected an integer"},
		{"vips[0].port", 17, `expected an integer, got a string "http"`},
	},
	"duplicate-key":              {{"nodes.s.kind", 7, `"kind" is set more than once`}},
	"tier-lb-not-katran":         {{"vips[0].lb[1]", 19, `node "s" is a real, not a katran`}},
	"tier-lb-duplicate":          {{"vips[0].lb[2]", 19, `"k1" is already listed at lb[0]`}},
	"tier-lb-empty":              {{"vips[0].lb", 19, "required"}},
	"tier-routing-bad":           {{"nodes.r.routing", 5, `"ospf" is not a routing mode`}},
	"tier-routing-not-router":    {{"nodes.k1.routing", 6, "only a router has routing"}},
	"tier-bgp-not-speaker":       {{"nodes.s.bgp", 8, "only routers and katrans speak BGP"}},
	"tier-asn-range":             {{"nodes.r.bgp.asn", 5, "0 is out of range"}, {"nodes.k1.bgp.asn", 6, "4294967295 is out of range"}},
	"tier-asn-trans":             {{"nodes.r.bgp.asn", 5, "AS_TRANS"}},
	"tier-hold":                  {{"nodes.r.bgp.hold", 5, "a hold time is 3..65535"}},
	"tier-hold-zero":             {{"nodes.r.bgp.hold", 5, "cannot run without them"}},
	"tier-keepalive":             {{"nodes.r.bgp.keepalive", 5, "at most a third of the hold time (9 s)"}},
	"tier-asn-shared":            {{"nodes.k1.bgp", 6, "k1 and r both have ASN 65001"}},
	"tier-bgp-static-router":     {{"nodes.k1.bgp", 6, "no BGP session"}},
	"hc-nat":                     {{"vips[0].healthcheck", 16, "a NAT VIP has none"}},
	"hc-type-bad":                {{"vips[0].healthcheck.type", 16, `"icmp" is not a health check type`}},
	"hc-interval-bad":            {{"vips[0].healthcheck.interval", 16, `"1 sec" is not a duration`}},
	"hc-interval-short":          {{"vips[0].healthcheck.interval", 16, "10ms is out of range 100ms..1h0m0s"}},
	"hc-timeout-long":            {{"vips[0].healthcheck.timeout", 16, "1s is not shorter than the interval (1s)"}},
	"hc-fall-rise-zero":          {{"vips[0].healthcheck.fall", 16, "0 is out of range 1..100"}, {"vips[0].healthcheck.rise", 16, "0 is out of range 1..100"}},
	"hc-tcp-on-udp":              {{"vips[0].healthcheck.type", 16, "a tcp check needs a TCP VIP"}},
	"hc-http-on-udp":             {{"vips[0].healthcheck.type", 16, "an http check needs a TCP VIP"}},
	"hc-udp-on-tcp":              {{"vips[0].healthcheck.type", 16, "a udp-echo check needs a UDP VIP"}},
	"hc-port-required":           {{"vips[0].healthcheck.port", 16, "required: the VIP has every port (0)"}},
	"hc-path-not-http":           {{"vips[0].healthcheck.path", 16, "only an http check has a path"}},
	"hc-path-bad":                {{"vips[0].healthcheck.path", 16, `"health" is not a URL path`}},
	"hc-word-bad":                {{"vips[0].healthcheck", 16, `"off" is not a health check`}},
	"hc-unknown-field":           {{"vips[0].healthcheck.retries", 16, `unknown field "retries"`}},
	"name-missing":               {{"name", 2, "required"}},
	"name-invalid":               {{"name", 2, `"Dsr_Lab" is not a valid lab name`}},
	"name-too-long":              {{"name", 2, "is not a valid lab name"}},
	"prefix-invalid":             {{"prefix", 3, `"-lab" cannot start a container name`}},
	"node-name-invalid":          {{"nodes.Bad.Node", 8, `"Bad.Node" is not a valid node name`}},
	"no-nodes":                   {{"nodes", 3, "at least one node is required"}},
	"kind-missing":               {{"nodes.k.kind", 6, "required"}},
	"kind-unknown":               {{"nodes.k.kind", 6, `unknown kind "katrin"`}},
	"xdp-not-katran":             {{"nodes.s.xdp", 7, "only katran nodes"}},
	"xdp-bad":                    {{"nodes.k.xdp", 6, `"fast" is not an XDP mode`}},
	"decap-not-real":             {{"nodes.k.decap", 6, "only real nodes"}},
	"decap-bad":                  {{"nodes.s.decap", 7, `"gre" is not a decap mode`}},
	"endpoint-format":            {{"links[0].endpoints[0]", 9, `"c-eth0" is not of the form node:interface`}},
	"endpoint-unknown-node":      {{"links[0].endpoints[0]", 9, `unknown node "x"`}},
	"interface-name-invalid":     {{"links[0].endpoints[0]", 9, "longer than 15 characters"}},
	"interface-lo":               {{"links[0].endpoints[0]", 9, `"lo" is not a valid interface name`}},
	"endpoints-count":            {{"links[0].endpoints", 9, "exactly 2 endpoints, got 3"}},
	"interface-reused":           {{"links[1].endpoints[0]", 11, "r:eth0 is already used by links[0].endpoints[1]"}},
	"ipv4-count":                 {{"links[0].ipv4", 10, "1 addresses for 2 endpoints"}},
	"ipv4-bad-cidr":              {{"links[0].ipv4[0]", 10, `"10.0.0.1/33" is not a valid CIDR`}},
	"ipv4-not-ipv4":              {{"links[0].ipv4[0]", 10, "is not an IPv4 address"}},
	"ipv4-network-address":       {{"links[0].ipv4[0]", 10, "is the network address of 10.0.0.0/24"}},
	"ipv4-broadcast-address":     {{"links[0].ipv4[1]", 10, "is the broadcast address of 10.0.0.0/24"}},
	"ipv4-subnet-mismatch":       {{"links[0].ipv4[1]", 10, "is not in the subnet of 10.0.0.1/24"}},
	"address-duplicate":          {{"links[2].ipv4[0]", 14, "10.0.1.2 is already used by links[1].ipv4[0]"}},
	"vip-address-is-interface":   {{"vips[0].address", 16, "10.0.1.1 is already used by links[1].ipv4[1]"}},
	"mtu-range":                  {{"links[0].mtu", 11, "9000 is out of range 68..3498"}},
	"gateway-bad":                {{"nodes.c.gateway", 4, `"10.0.0.300" is not an IPv4 address`}},
	"gateway-off-link":           {{"nodes.c.gateway", 4, "10.9.9.9 is not in the subnet of any interface"}},
	"route-bad-dst":              {{"nodes.c.routes[0].dst", 4, "has host bits set (did you mean 10.5.0.0/16?)"}},
	"route-bad-via":              {{"nodes.c.routes[0].via", 4, "10.9.9.9 is not in the subnet of any interface"}},
	"route-missing-via":          {{"nodes.c.routes[0].via", 4, "required"}},
	"route-duplicate":            {{"nodes.c.routes[1].dst", 4, "already routed by routes[0]"}},
	"route-default-with-gateway": {{"nodes.c.routes[0].dst", 4, "a default route and gateway cannot both be set"}},
	"vip-address-bad":            {{"vips[0].address", 16, `"192.168.0.256" is not an IPv4 or IPv6 address`}},
	"ipv6-not-ipv6":              {{"links[0].ipv6[0]", 10, `"10.0.0.1/24" is not an IPv6 address`}},
	"ipv6-link-local":            {{"links[0].ipv6[1]", 10, "is link-local"}},
	"ipv6-mtu-small":             {{"links[0].mtu", 11, "1200 is below 1280"}},
	"ipv6-subnet-mismatch":       {{"links[0].ipv6[1]", 10, "is not in the subnet of fd00:1::1/64 (fd00:1::/64)"}},
	"gateway6-not-ipv6":          {{"nodes.c.gateway6", 4, `"10.0.0.2" is not an IPv6 address`}},
	"route-family-mismatch":      {{"nodes.c.routes[0].via", 4, `"10.0.0.2" is not an IPv6 address`}},
	"vip6-real-without-ipv6":     {{"vips[0].reals[0]", 18, `real "s" has no IPv6 address on s:eth0 for [fd00:77::1]:80/tcp (IPv6 VIPs reach their reals IPv6-in-IPv6)`}},
	"host-unknown":               {{"nodes.s.host", 8, `unknown host "h3"`}},
	"host-no-underlay":           {{"links[2].endpoints", 14, `host "local" has no underlay address`}},
	// One error: the host still has the underlay it was given, so its
	// link is not also said to lack one.
	"host-underlay-duplicate": {{"hosts.local.underlay", 3, `172.31.255.2 is already the underlay of host "h2"`}},
	"host-tcp-port":           {{"hosts.h2.docker", 3, `"tcp://127.0.0.1:99999": the port must be a number in 1..65535`}},
	// Missing files fail validate where they are named, not up when it
	// dials the engine.
	"host-tls-missing": {
		{"hosts.h2.tls.key", 4, "required: the client certificate's private key"},
		{"hosts.h2.tls.ca", 4, "testdata/invalid/no-such-ca.pem: no such file (the CA certificate"},
		{"hosts.h2.tls.cert", 4, "/nonexistent/cert.pem: no such file (dsrlab's client certificate)"},
	},
	"vip-address-zone":           {{"vips[0].address", 16, `"fd00:10::1%eth0" names an interface (%eth0)`}},
	"host-mtu-too-big":           {{"links[2].mtu", 16, "1500 does not fit the underlay"}},
	"host-ssh-tls":               {{"hosts.h2.tls", 3, "goes with a tcp:// engine address: an ssh:// engine is reached with SSH's own encryption"}},
	"host-ssh-query":             {{"hosts.h2.docker", 3, "query strings are not supported"}},
	"host-ssh-port":              {{"hosts.h2.docker", 3, "port 70000 is out of range 1..65535"}},
	"host-docker-missing":        {{"hosts.h2.docker", 3, "required: the address of the host's engine"}},
	"host-local-docker":          {{"hosts.local.docker", 3, "the local host is the engine dsrlab finds itself"}},
	"vip6-katran-without-ipv6":   {{"vips[0].reals[0]", 21, `real "s" is reached over IPv6, but k's uplink k:eth0 has no IPv6 address`}},
	"vip-port-zero":              {{"vips[0].port", 16, "0 (every port) needs `service: none`"}},
	"vip-port-zero-nat":          {{"vips[0].port", 16, "0 (every port) is for DSR VIPs"}},
	"vip-port-range":             {{"vips[0].port", 16, "70000 is out of range 0..65535"}},
	"vip-hash-bad":               {{"vips[0].hash", 16, `"random" is not a hash mode`}},
	"program-both":               {{"nodes.k.program.object", 8, "give either source (C, compiled by dsrlab) or object"}},
	"program-neither":            {{"nodes.k.program", 8, "needs source (a C file, compiled by dsrlab) or object"}},
	"program-interface-unknown":  {{"nodes.k.program.interface", 8, `"k" has no interface "eth7" (it has [eth0])`}},
	"program-interface-required": {{"nodes.c.program.interface", 4, "required on a client"}},
	"program-map-entry-no-value": {{"nodes.k.program.maps.lb_map[0]", 12, "needs a value"}},
	"program-unknown-field":      {{"nodes.k.program.section", 8, `unknown field "section"`}},
	"program-cflags": {
		{"nodes.k.program.cflags[1]", 8, "-o is set by dsrlab"},
		{"nodes.k.program.cflags[3]", 8, `"lb.c" is not a flag`},
		{"nodes.k.program.cflags[4]", 8, "-include needs a path after it"},
	},
	"program-cflags-object": {{"nodes.k.program.cflags", 8, "compiler flags go with a source"}},
	"program-tc": {
		{"nodes.k.program.type", 9, "program: is the node's XDP program; TC programs go in programs: (a list)"},
		{"nodes.s.programs[0]", 13, "a TC program needs direction: ingress or egress"},
		{"nodes.s.programs[1].direction", 14, `"sideways" is not a direction (want ingress or egress)`},
		{"nodes.s.programs[2].type", 15, `"kprobe" is not a program type (want xdp or tc)`},
		{"nodes.s.programs[3].priority", 16, "70000 is out of range 1..65534 (1 runs first"},
		{"nodes.s.programs[5].priority", 18, "eth0 egress priority 4 is taken by programs[4]: give each program of a hook its own priority"},
		{"nodes.s.programs[7]", 20, `"s" has an XDP program already (programs[6])`},
		{"nodes.s.programs[8].direction", 21, "goes with type: tc; an XDP program sees incoming packets only"},
	},
	"vip-proto-bad":              {{"vips[0].proto", 16, `"sctp" is not a protocol`}},
	"vip-service-bad":            {{"vips[0].service", 17, `"nginx" is not a VIP service`}},
	"vip-lb-missing":             {{"vips[0].lb", 16, "required"}},
	"vip-lb-unknown":             {{"vips[0].lb", 16, `unknown node "x"`}},
	"vip-lb-not-katran":          {{"vips[0].lb", 16, `node "r" is a router, not a katran`}},
	"vip-reals-empty":            {{"vips[0].reals", 16, "at least one real is required"}},
	"vip-real-unknown":           {{"vips[0].reals[1]", 16, `unknown node "x"`}},
	"vip-real-not-real":          {{"vips[0].reals[0]", 16, `node "c" is a client, not a real`}},
	"vip-real-repeated":          {{"vips[0].reals[1]", 16, `real "s" is already listed at reals[0]`}},
	"vip-duplicate":              {{"vips[1]", 17, "192.168.0.1:80/tcp is already defined by vips[0]"}},
	"real-no-route-back":         {{"nodes.s", 7, "no route back to client 10.0.0.1"}},
	"katran-no-uplink":           {{"nodes.k", 6, "has no link to a router"}},
	"katran-uplink-without-ipv4": {{"nodes.k", 6, "uplink k:eth0 has no ipv4"}},
	"real-uplink-without-ipv4":   {{"nodes.s", 7, "no addressed link to a router"}},

	"real-weight-range":         {{"vips[0].reals[0].weight", 16, "1001 is out of range 0..1000"}},
	"real-weight-negative":      {{"vips[0].reals[0].weight", 16, "-1 is out of range 0..1000"}},
	"real-weight-huge":          {{"vips[0].reals[0].weight", 16, `expected an integer, got a number "99999999999999999999"`}},
	"real-weight-fraction":      {{"vips[0].reals[0].weight", 16, `expected an integer, got a number "1.5"`}},
	"real-weight-type":          {{"vips[0].reals[0].weight", 16, `expected an integer, got a string "heavy"`}},
	"real-item-shape":           {{"vips[0].reals[0]", 16, "expected a node name or a mapping {node, weight}, got a list"}},
	"real-unknown-field":        {{"vips[0].reals[0].wieght", 20, `unknown field "wieght"`}},
	"real-node-missing":         {{"vips[0].reals[0].node", 20, "required"}},
	"real-mapping-unknown-node": {{"vips[0].reals[0].node", 16, `unknown node "x"`}},
	"real-repeated-forms":       {{"vips[0].reals[1].node", 16, `real "s" is already listed at reals[0]`}},
	"vip-mode-bad":              {{"vips[0].mode", 16, `"lvs" is not a VIP mode (want dsr or nat)`}},
	"vip-mode-conflict":         {{"vips[1].mode", 17, "192.168.0.1 is a dsr VIP in vips[0]; an address cannot be both dsr and nat"}},
	"nat-real-no-route-back":    {{"nodes.s", 9, "backs 192.168.0.1:80/tcp but has no route back to load balancer 10.0.1.1"}},
	"nat-lb-no-routes": {
		{"nodes.k", 8, "serves 192.168.0.1:80/tcp but has no route back to client 10.0.0.1"},
		{"nodes.k", 8, "serves 192.168.0.1:80/tcp but has no route to real 10.0.2.1"},
	},

	// Hostile values: out of every range, path tricks, control
	// characters, and shapes a careless decoder would truncate or drop.
	"vip-port-huge":            {{"vips[0].port", 16, `expected an integer, got a number "99999999999999999999"`}},
	"vip-port-negative":        {{"vips[0].port", 16, "-1 is out of range 0..65535"}},
	"mtu-huge":                 {{"links[0].mtu", 11, `expected an integer, got a number "1e30"`}},
	"mtu-negative":             {{"links[0].mtu", 11, "-1 is out of range 68..3498"}},
	"gateway-number":           {{"nodes.c.gateway", 4, `"99999999999999999999" is not an IPv4 address`}},
	"name-path-traversal":      {{"name", 2, `"../../etc" is not a valid lab name`}},
	"prefix-slash":             {{"prefix", 3, `"a/../b" cannot start a container name`}},
	"node-name-path-traversal": {{"nodes.../../etc", 5, `"../../etc" is not a valid node name`}},
	"node-name-slash":          {{"nodes.a/b", 5, `"a/b" is not a valid node name`}},
	"node-name-nul":            {{`nodes."a\x00b"`, 5, `"a\x00b" is not a valid node name`}},
	"node-name-newline":        {{`nodes."a\nb"`, 5, `"a\nb" is not a valid node name`}},
	"node-name-unicode":        {{`nodes."réal"`, 5, "\"réal\" is not a valid node name"}},
	"node-name-very-long":      {{"nodes." + strings.Repeat("n", 300), 5, "is not a valid node name"}},
	"kind-nul":                 {{"nodes.k.kind", 6, `unknown kind "katran\x00"`}},
	"interface-name-nul":       {{"links[0].endpoints[0]", 9, `"eth\x00" is not a valid interface name: contains a control character`}},
	"interface-name-slash":     {{"links[0].endpoints[0]", 9, `"../x" is not a valid interface name: contains / or :`}},
	"sysctl-name-path":         {{"nodes.r.sysctls.net/../../../etc/x", 5, `"net/../../../etc/x" is not a sysctl name`}},
	"env-name-invalid":         {{"nodes.c.env.A=B", 4, `"A=B" is not a valid environment variable name`}},
	"exec-not-list":            {{"nodes.c.exec", 4, `expected a list, got a string "ip link"`}},
	"nodes-list":               {{"nodes", 3, "expected a mapping, got a list"}},
	"root-list":                {{"", 2, "expected a mapping, got a list"}},
	"link-null":                {{"links[0]", 9, "empty list item"}},
	"deep-nesting":             {{"name", 2, "expected a string, got a list"}},
	"tab-indent":               {{"", 4, "found character that cannot start any token"}},
	"two-documents":            {{"", 0, "more than one YAML document"}},
	"invalid-utf8":             {{"", 0, "invalid leading UTF-8 octet"}},
	// The aliases are never expanded: every anchor sits under an unknown
	// key, and the alias in exec expands to lists where strings belong,
	// reported once, at the aliased list, however often it repeats.
	"alias-bomb": {
		{"a0", 3, `unknown field "a0"`},
		{"a1", 4, `unknown field "a1"`},
		{"a2", 5, `unknown field "a2"`},
		{"a3", 6, `unknown field "a3"`},
		{"a4", 7, `unknown field "a4"`},
		{"a5", 8, `unknown field "a5"`},
		{"a6", 9, `unknown field "a6"`},
		{"a7", 10, `unknown field "a7"`},
		{"a7", 10, "expected a string, got a list"},
		{"a8", 11, `unknown field "a8"`},
	},
}

func TestInvalid(t *testing.T) {
	for _, name := range slices.Sorted(maps.Keys(invalidCases)) {
		want := invalidCases[name]
		t.Run(name, func(t *testing.T) {
			file := filepath.Join("testdata", "invalid", name+".yaml")
			topo, err := topology.Load(file)
			if topo != nil {
				t.Errorf("Load returned a topology with the error")
			}
			var list topology.ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Load: %v, want an ErrorList", err)
			}
			if len(list) != len(want) {
				t.Errorf("got %d errors, want %d:\n%v", len(list), len(want), list)
			}
			for i, w := range want[:min(len(want), len(list))] {
				e := list[i]
				if e.File != file || e.Field != w.field || e.Line != w.line || !strings.Contains(e.Msg, w.msg) {
					t.Errorf("error %d = %v\nwant %s:%d:*: %s: ...%s...", i, e, file, w.line, w.field, w.msg)
				}
				if e.Line > 0 && e.Column == 0 && w.field != "" {
					t.Errorf("error %d has no column: %v", i, e)
				}
			}
		})
	}
}

// TestInvalidFixturesCovered keeps every fixture in testdata/invalid in
// invalidCases.
func TestInvalidFixturesCovered(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		if _, ok := invalidCases[strings.TrimSuffix(filepath.Base(f), ".yaml")]; !ok {
			t.Errorf("%s has no case in invalidCases", f)
		}
	}
}

func TestPrograms(t *testing.T) {
	topo := mustLoad(t, "testdata/valid/programs.yaml")
	k := topo.Node("k").Program
	if k == nil {
		t.Fatal("katran has no program")
	}
	dir, _ := filepath.Abs("testdata/valid")
	if k.Source != filepath.Join(dir, "xdp/lb.c") || k.Object != "" || k.File() != k.Source {
		t.Errorf("source %q object %q: want the path relative to the file made absolute", k.Source, k.Object)
	}
	if k.Interface != topo.Node("k").Uplink() {
		t.Errorf("katran's program goes on %v, want its uplink", k.Interface)
	}
	wantFlags := []string{"-D__KERNEL__", "-DRING_SIZE=13", "-I", filepath.Join(dir, "include"),
		"-I", "/usr/include/katran", "-include", filepath.Join(dir, "xdp/consts.h"), "-O3"}
	if !slices.Equal(k.CFlags, wantFlags) {
		t.Errorf("cflags %q, want %q (paths relative to the file made absolute)", k.CFlags, wantFlags)
	}
	if k.FilePos.Line != 13 || k.FilePos.Column != 15 || k.Pos.Line != 13 {
		t.Errorf("positions: block %v, source %v", k.Pos, k.FilePos)
	}
	if len(k.Maps) != 2 || k.Maps[0].Name != "counters" || k.Maps[1].Name != "lb_map" {
		t.Fatalf("maps %+v, want counters and lb_map by name", k.Maps)
	}
	if v := k.Maps[1].Entries[0].Value; v.Kind != yaml.MappingNode || v.Line != 19 {
		t.Errorf("lb_map value node: kind %v line %d", v.Kind, v.Line)
	}
	if g := k.Globals; len(g) != 2 || g[0].Name != "cfg" || g[0].Value.Kind != yaml.MappingNode || g[0].Pos.Line != 24 ||
		g[1].Name != "outer_ttl" || g[1].Value.Value != "63" || g[1].Pos.Line != 23 {
		t.Errorf("globals %+v, want cfg (line 24) and outer_ttl (line 23) by name", g)
	}
	tc := topo.Node("s").TC
	if s := topo.Node("s"); s.Program != nil || s.XDP != "" || len(tc) != 2 {
		t.Fatalf("real s: program %v, xdp %q, tc %+v; want two TC programs and no XDP", s.Program, s.XDP, tc)
	}
	if p := tc[0]; p.Type != topology.ProgramTC || p.Direction != "egress" || p.Priority != 1 || p.Interface != topo.Node("s").Uplink() ||
		p.Source != filepath.Join(dir, "tc/replies.c") || p.Field != "nodes.s.programs[0]" {
		t.Errorf("first TC program %+v", p)
	}
	if p := tc[1]; p.Direction != "ingress" || p.Priority != 7 || p.Object != "/opt/tc/drop.o" || len(p.Maps) != 1 {
		t.Errorf("second TC program %+v", p)
	}
	if k.Type != topology.ProgramXDP || k.Field != "nodes.k.program" {
		t.Errorf("katran's program: type %q field %q", k.Type, k.Field)
	}
	r := topo.Node("r")
	if r.Program == nil || r.Program.Object != "/opt/xdp/count.o" || r.Program.Interface.Name != "eth1" || r.XDP != topology.XDPGeneric {
		t.Errorf("router's program %+v, xdp %q", r.Program, r.XDP)
	}
	if topo.Node("c").XDP != "" {
		t.Errorf("a client without a program has XDP mode %q", topo.Node("c").XDP)
	}
	if any := topo.VIPs[1]; any.Port != topology.AnyPort || any.Hash != topology.HashDstPortOnly {
		t.Errorf("any-port VIP %+v", any)
	}
	if topo.VIPs[0].Hash != topology.HashFiveTuple {
		t.Errorf("default hash %q", topo.VIPs[0].Hash)
	}
}

func TestHostsAndVXLANLinks(t *testing.T) {
	topo := mustLoad(t, "testdata/valid/multihost.yaml")
	real, h2 := topo.Node("real"), topo.Host("h2")
	if real.Host != h2 || topo.Node("router").Host != topo.Host(topology.LocalHost) {
		t.Fatalf("hosts: real on %v, router on %v", real.Host, topo.Node("router").Host)
	}
	if h2.Underlay != netip.MustParseAddr("172.31.255.2") || h2.Docker != "unix:///run/docker-h2.sock" || h2.MTU != 1500 {
		t.Errorf("h2 = %+v", h2)
	}
	for _, l := range topo.Links {
		cross := l.A.Node.Host != l.B.Node.Host
		switch {
		case cross && (l.VXLAN == nil || l.VXLAN.VNI == 0 || l.VXLAN.VNI > 0xffffff || l.VXLAN.Port != topology.DefaultVXLANPort):
			t.Errorf("link %s-%s between hosts: vxlan %+v", l.A, l.B, l.VXLAN)
		case cross && l.MTU != 1500-topology.VXLANOverhead:
			t.Errorf("link %s-%s between hosts has MTU %d, want the underlay's minus VXLAN's overhead", l.A, l.B, l.MTU)
		case !cross && l.VXLAN != nil:
			t.Errorf("link %s-%s on one host is a VXLAN", l.A, l.B)
		}
	}
	again := mustLoad(t, "testdata/valid/multihost.yaml")
	if again.Links[2].VXLAN.VNI != topo.Links[2].VXLAN.VNI {
		t.Error("the VNI of a link changes from one load to the next")
	}
}
