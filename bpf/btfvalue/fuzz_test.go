package btfvalue

import (
	"bytes"
	"testing"
)

// FuzzEncodeString: any input either fails with an *Error (or Errors) or encodes to bytes that decode to text
// which encodes back to the same bytes. Never a panic.
func FuzzEncodeString(f *testing.F) {
	for _, tc := range encodeCases {
		if tc.t == service {
			f.Add(tc.in)
		}
	}
	for _, s := range []string{
		"{cfg: {dst_mac: [1, 2, 300]}}", "{vip: {v4: 1.2.3.4, v6: '::1'}}", "{pads: [{}, {}, {}]}",
		"{low: -1, high: 31}", "{name: 'a\"b'}", "{grid: [[1, [2]]]}", "[{]", "&a [*a]", "{cfg: real:eth0}",
		"{seq: -0x}", "", "{weight: 0x8000}", "!!binary AAAA", "{? [a]: b}",
		"{port: !be 80, proto: !be 6}", "{seq: !be 1, weight: x, low: 99}", "{vip: {v4: 1.2.3.4, v6: '1.2.3.4'}}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := EncodeString(service, s, fakeLab)
		if err != nil {
			switch err := err.(type) {
			case *Error:
			case Errors:
				if len(err) < 2 {
					t.Fatalf("%q: a list of %d errors", s, len(err))
				}
			default:
				t.Fatalf("%q: error %v is neither an *Error nor Errors", s, err)
			}
			return
		}
		v, err := Decode(service, b)
		if err != nil {
			t.Fatalf("%q encoded to %x, which does not decode: %v", s, b, err)
		}
		again, err := EncodeString(service, v.String(), nil)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%q: %s encodes back to %x, %v; want %x", s, v, again, err, b)
		}
	})
}
