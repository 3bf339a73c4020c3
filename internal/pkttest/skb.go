package pkttest

import "strconv"

// SKB is the part of a TC program's socket buffer (struct __sk_buff) a
// case sets before the run and checks after it. The kernel's test run
// takes only a few fields from the caller (convert___skb_to_skb in
// net/bpf/test_run.c): the rest it derives from the frame (len,
// protocol, pkt_type) or refuses unless zero.
type SKB struct {
	// Mark is skb->mark: a socket's SO_MARK, or what an earlier program
	// or netfilter set.
	Mark uint32
	// Priority is skb->priority: a socket's SO_PRIORITY, the qdisc's
	// class.
	Priority uint32
}

// SKBField is one field of an SKB as a case file gives it.
type SKBField struct {
	Name         string
	Value        uint32
	Line, Column int
}

// skbFieldNames are the fields a case file may give, in SKB's order.
var skbFieldNames = []string{"mark", "priority"}

func (f SKBField) field(s *SKB) *uint32 {
	if f.Name == "priority" {
		return &s.Priority
	}
	return &s.Mark
}

// compareSKB lists the fields of got that differ from the expected ones.
func compareSKB(want []SKBField, got SKB) []Mismatch {
	var out []Mismatch
	for _, f := range want {
		if v := *f.field(&got); v != f.Value {
			out = append(out, Mismatch{Field: "skb." + f.Name, Want: hexAndDecimal(f.Value), Got: hexAndDecimal(v), Line: f.Line, Column: f.Column})
		}
	}
	return out
}

// hexAndDecimal writes a mark both ways: marks are usually thought of in
// hex, and a case file may give either.
func hexAndDecimal(v uint32) string {
	return "0x" + strconv.FormatUint(uint64(v), 16) + " (" + strconv.FormatUint(uint64(v), 10) + ")"
}
