package bgp

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// eventLog writes one timestamped line per event: sessions, routes,
// announcements. The lab may show these lines to users.
type eventLog struct {
	mu   sync.Mutex
	w    io.Writer
	node string
	// downReason keeps, per peer address, why GoBGP last took a session
	// down: its peer events do not say, its log does.
	downReason map[string]string
}

func newEventLog(w io.Writer, node string) *eventLog {
	return &eventLog{w: w, node: node, downReason: map[string]string{}}
}

func (l *eventLog) printf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s %s: %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), l.node, fmt.Sprintf(format, a...))
}

func (l *eventLog) setDownReason(peer, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.downReason[peer] = reason
}

func (l *eventLog) takeDownReason(peer string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.downReason[peer]
	if !ok {
		return "unknown reason"
	}
	delete(l.downReason, peer)
	return r
}

// gobgpLogger passes GoBGP's warnings and errors to the event log and keeps
// the rest out, except the reason of a session going down.
type gobgpLogger struct{ log *eventLog }

func (g gobgpLogger) line(level, msg string, f gobgplog.Fields) {
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(f)) {
		kv = append(kv, fmt.Sprintf("%s=%v", k, f[k]))
	}
	g.log.printf("gobgp %s: %s %s", level, msg, strings.Join(kv, " "))
}

func (g gobgpLogger) Panic(msg string, f gobgplog.Fields) {
	g.line("panic", msg, f)
	panic(msg)
}

// Fatal is reached only through GoBGP's gRPC server, which the speaker does
// not start; it stops the speaker as GoBGP expects.
func (g gobgpLogger) Fatal(msg string, f gobgplog.Fields) {
	g.line("fatal", msg, f)
	panic(msg)
}

// harmless are GoBGP warnings that say nothing wrong about a lab:
var harmless = map[string]bool{
	// A router's export policy refuses every path; GoBGP still sends a
	// withdrawal of a path it never sent when its best path changes, and
	// the balancer's GoBGP remarks it had no such path.
	"No matching path for withdraw found, may be path was not installed into table": true,
	// Meant for peers with TTL security, which the lab does not use; the
	// option fails on the listener, never on sessions.
	"cannot set TTL (255) for TCPListener": true,
	// The session-down line that follows gives the notification as the
	// reason.
	"received notification": true,
}

func (g gobgpLogger) Error(msg string, f gobgplog.Fields) { g.line("error", msg, f) }

func (g gobgpLogger) Warn(msg string, f gobgplog.Fields) {
	if !harmless[msg] {
		g.line("warning", msg, f)
	}
}

func (g gobgpLogger) Info(msg string, f gobgplog.Fields) {
	if msg == "Peer Down" {
		if peer, ok := f["Key"].(string); ok {
			g.log.setDownReason(peer, fmt.Sprint(f["Reason"]))
		}
	}
}

func (gobgpLogger) Debug(string, gobgplog.Fields) {}
func (gobgpLogger) SetLevel(gobgplog.LogLevel)    {}

// GetLevel keeps GoBGP from building debug messages nobody reads.
func (gobgpLogger) GetLevel() gobgplog.LogLevel { return gobgplog.WarnLevel }
