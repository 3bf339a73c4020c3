package topology

import (
	"cmp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// CheckType is how a VIP's reals are checked.
type CheckType string

const (
	// CheckTCP opens a connection to the VIP's port.
	CheckTCP CheckType = "tcp"
	// CheckHTTP sends GET Path and wants a 2xx or 3xx answer.
	CheckHTTP CheckType = "http"
	// CheckUDPEcho sends a datagram and wants one back, as dsrlab's echo
	// service answers.
	CheckUDPEcho CheckType = "udp-echo"
)

// Health check defaults and bounds. The interval's floor keeps a lab of
// many reals from flooding itself with checks.
const (
	DefaultCheckInterval = time.Second
	DefaultCheckTimeout  = 500 * time.Millisecond
	DefaultCheckFall     = 3
	DefaultCheckRise     = 2
	minCheckInterval     = 100 * time.Millisecond
	maxCheckInterval     = time.Hour
	maxCheckCount        = 100
)

// HealthCheck is how every balancer of a VIP checks each of its reals:
// through the tunnel, to the VIP on the real, so a check fails when the
// real's decapsulation or its VIP on lo is broken, not only its service.
type HealthCheck struct {
	Type CheckType
	// Port is where the check connects on the VIP: the VIP's port unless
	// the file gives another.
	Port uint16
	// Path is the URL path of an http check ("" for the others).
	Path              string
	Interval, Timeout time.Duration
	// Fall consecutive failures take a real out of its balancer's ring,
	// Rise consecutive successes put it back.
	Fall, Rise int
}

// rawHealthCheck is a VIP's `healthcheck`: the word none, or a mapping.
type rawHealthCheck struct {
	// none is the scalar form's word, kept for the builder to judge at
	// its position.
	none     string
	scalar   bool
	Type     string   `yaml:"type"`
	Port     *integer `yaml:"port,omitempty"`
	Path     string   `yaml:"path,omitempty"`
	Interval string   `yaml:"interval,omitempty"`
	Timeout  string   `yaml:"timeout,omitempty"`
	Fall     *integer `yaml:"fall,omitempty"`
	Rise     *integer `yaml:"rise,omitempty"`
}

// rawHealthCheckFields are the keys of a rawHealthCheck mapping.
var rawHealthCheckFields = []string{"type", "port", "path", "interval", "timeout", "fall", "rise"}

// UnmarshalYAML accepts both forms; unknown keys are refused here, as for
// rawReal, since a custom decoder does not inherit KnownFields.
func (h *rawHealthCheck) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		h.scalar = true
		return n.Decode(&h.none)
	case yaml.MappingNode:
		type fields rawHealthCheck // drops this method, which Decode would call again
		return decodeMapping(n, "topology.rawHealthCheck", rawHealthCheckFields, (*fields)(h))
	}
	return typeError(n, "none or a health check mapping")
}

func (h rawHealthCheck) MarshalYAML() (any, error) {
	if h.scalar {
		return h.none, nil
	}
	type fields rawHealthCheck
	return fields(h), nil
}

// buildHealthCheck resolves a VIP's health check; raw nil (absent) or
// `none` leaves v without one.
func (b *builder) buildHealthCheck(v *VIP, raw *rawHealthCheck, p fieldPath) {
	if raw == nil {
		return
	}
	if raw.scalar {
		if raw.none != "none" {
			b.errorf(p, "%q is not a health check (want none or a mapping {type, port, ...})", raw.none)
		}
		return
	}
	if v.NAT() {
		// A check goes the way the VIP's traffic goes, through the
		// tunnel; a NAT VIP's traffic has no tunnel to test.
		b.errorf(p, "health checks run through the DSR tunnel; a NAT VIP has none (use mode: dsr, or healthcheck: none)")
		return
	}
	hc := &HealthCheck{Type: CheckType(raw.Type), Port: v.Port, Interval: DefaultCheckInterval, Timeout: DefaultCheckTimeout, Fall: DefaultCheckFall, Rise: DefaultCheckRise}
	ok := true
	switch hc.Type {
	case CheckTCP, CheckHTTP:
		if v.Proto != ProtoTCP {
			b.errorf(p.key("type"), "%s check needs a TCP VIP; %s is %s (use udp-echo)", map[CheckType]string{CheckTCP: "a tcp", CheckHTTP: "an http"}[hc.Type], v, v.Proto)
			ok = false
		}
	case CheckUDPEcho:
		if v.Proto != ProtoUDP {
			b.errorf(p.key("type"), "a udp-echo check needs a UDP VIP; %s is %s (use tcp or http)", v, v.Proto)
			ok = false
		}
	case "":
		b.errorf(p.key("type"), "required: tcp, http or udp-echo")
		ok = false
	default:
		b.errorf(p.key("type"), "%q is not a health check type (want tcp, http or udp-echo)", raw.Type)
		ok = false
	}
	switch {
	case raw.Port != nil && (*raw.Port < 1 || *raw.Port > 65535):
		b.errorf(p.key("port"), "%d is out of range 1..65535", *raw.Port)
		ok = false
	case raw.Port != nil:
		hc.Port = uint16(*raw.Port)
	case v.Port == AnyPort:
		b.errorf(p.key("port"), "required: the VIP has every port (0), so the check must name one")
		ok = false
	}
	switch {
	case raw.Path != "" && hc.Type != CheckHTTP:
		b.errorf(p.key("path"), "only an http check has a path")
		ok = false
	case raw.Path != "" && (!strings.HasPrefix(raw.Path, "/") || strings.ContainsAny(raw.Path, " \t\r\n")):
		b.errorf(p.key("path"), "%q is not a URL path (want /..., without spaces)", raw.Path)
		ok = false
	case hc.Type == CheckHTTP:
		hc.Path = cmp.Or(raw.Path, "/")
	}
	ok = b.checkDuration(&hc.Interval, raw.Interval, minCheckInterval, maxCheckInterval, p.key("interval")) && ok
	ok = b.checkDuration(&hc.Timeout, raw.Timeout, time.Millisecond, maxCheckInterval, p.key("timeout")) && ok
	if ok && hc.Timeout >= hc.Interval {
		b.errorf(p.key("timeout"), "%s is not shorter than the interval (%s): a check would still run when the next one starts", hc.Timeout, hc.Interval)
		ok = false
	}
	ok = b.checkCount(&hc.Fall, raw.Fall, p.key("fall")) && ok
	ok = b.checkCount(&hc.Rise, raw.Rise, p.key("rise")) && ok
	if ok {
		v.HealthCheck = hc
	}
}

// checkDuration parses s ("" keeps *d) into *d, within lo..hi.
func (b *builder) checkDuration(d *time.Duration, s string, lo, hi time.Duration, p fieldPath) bool {
	if s == "" {
		return true
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		b.errorf(p, "%q is not a duration (like 500ms, 1s, 2m)", s)
		return false
	case v < lo || v > hi:
		b.errorf(p, "%s is out of range %s..%s", v, lo, hi)
		return false
	}
	*d = v
	return true
}

// checkCount reads a fall or rise count (nil keeps *n).
func (b *builder) checkCount(n *int, raw *integer, p fieldPath) bool {
	if raw == nil {
		return true
	}
	if *raw < 1 || *raw > maxCheckCount {
		b.errorf(p, "%d is out of range 1..%d", *raw, maxCheckCount)
		return false
	}
	*n = int(*raw)
	return true
}

// raw converts hc back to the file format, every default written out.
func (hc *HealthCheck) raw() *rawHealthCheck {
	if hc == nil {
		return nil
	}
	port, fall, rise := integer(hc.Port), integer(hc.Fall), integer(hc.Rise)
	return &rawHealthCheck{Type: string(hc.Type), Port: &port, Path: hc.Path, Interval: hc.Interval.String(), Timeout: hc.Timeout.String(), Fall: &fall, Rise: &rise}
}
