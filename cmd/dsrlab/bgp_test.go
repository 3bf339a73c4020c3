//go:build linux

package main

import (
	"strings"
	"testing"
)

// A bad speaker config fails before anything starts, naming the field.
func TestBGPRefusesABadConfig(t *testing.T) {
	for _, c := range []struct{ config, want string }{
		{`{"node":"katran1","role":"announce","asn":0}`, "asn: 0 is reserved"},
		{`{"node":"router","role":"learn","asn":65000,"router_id":"10.0.0.1","peers":[{"addr":"10.0.0.2","asn":65001}],"hold":2}`, "hold: 2 s"},
		{`{"node":"router","holdtime":3}`, `unknown field "holdtime"`},
	} {
		_, err := run(t, "bgp", "--config", c.config)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("bgp --config %s: %v, want %q", c.config, err, c.want)
		}
	}
	if _, err := run(t, "bgp"); err == nil || !strings.Contains(err.Error(), "config") {
		t.Errorf("bgp without --config: %v", err)
	}
}
