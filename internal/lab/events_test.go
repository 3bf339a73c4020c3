package lab

import (
	"testing"

	"github.com/dsrlab/dsrlab/internal/runtime"
)

// Every command that reads another host execs dsrlab in the agent there:
// those execs are not events of the lab; a user's exec in a node is.
func TestOwnExecsAreNotEvents(t *testing.T) {
	agent := map[string]string{LabelLab: "mh", LabelRole: roleAgent}
	node := map[string]string{LabelLab: "mh", LabelNode: "client"}
	for _, c := range []struct {
		labels map[string]string
		action string
		own    bool
	}{
		{agent, "exec_create: /usr/local/bin/dsrlab agent", true},
		{agent, "exec_die", true},
		{agent, "die", false},
		{agent, "restart", false},
		{node, "exec_start: nc 192.168.10.1 50007", false},
		{node, "start", false},
	} {
		if got := ownExec(runtime.Event{Labels: c.labels, Action: c.action}); got != c.own {
			t.Errorf("%v %q: own exec %v, want %v", c.labels, c.action, got, c.own)
		}
	}
}
