package prog

import (
	"errors"

	"github.com/cilium/ebpf"
	"gopkg.in/yaml.v3"

	"github.com/dsrlab/dsrlab/bpf/btfvalue"
)

// NoEntry is what Check reports as found when the map has no entry of the
// key.
const NoEntry = "(no entry)"

// Check compares the map's entry of key with want, both written as in the
// topology (BTF field names, addresses, NODE:IFACE references through r).
// Only the fields want names are compared, so a test states what it is
// about and nothing more. A per-CPU map's value is the sum over its CPUs,
// as `dsrlab map` shows it. found is the whole value as read, or NoEntry.
// Errors about key or want are *btfvalue.Error, placed in the YAML.
func (m *Map) Check(key, want *yaml.Node, r btfvalue.Resolver) (found string, ok bool, err error) {
	kt, vt, err := m.types()
	if err != nil {
		return "", false, err
	}
	k, err := btfvalue.Encode(kt, key, r)
	if err != nil {
		return "", false, within(err, "key")
	}
	wantValue, mask, err := btfvalue.EncodeMask(vt, want, r)
	if err != nil {
		return "", false, within(err, "value")
	}
	var got []byte
	var shown Field
	if isPerCPU(m.Type()) {
		var values [][]byte
		if err := m.m.Lookup(k, &values); err != nil {
			return lookupFailed(err)
		}
		sum, summed := m.sum(values)
		if !summed {
			return "", false, errors.New("its per-CPU values cannot be summed by BTF")
		}
		// The sum's text is the codec's own notation, which it reads
		// back to the same bytes.
		if got, err = btfvalue.EncodeString(vt, sum.String(), nil); err != nil {
			return "", false, err
		}
		shown = sum
	} else {
		if err := m.m.Lookup(k, &got); err != nil {
			return lookupFailed(err)
		}
		shown = m.decodeValue(got)
	}
	if len(got) != len(wantValue) {
		return shown.String(), false, nil
	}
	for i := range got {
		if got[i]&mask[i] != wantValue[i]&mask[i] {
			return shown.String(), false, nil
		}
	}
	return shown.String(), true, nil
}

func lookupFailed(err error) (string, bool, error) {
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return NoEntry, false, nil
	}
	return "", false, err
}
