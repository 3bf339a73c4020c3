// Package maglev computes weighted Maglev lookup tables (Eisenbud et al.,
// "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI 2016).
//
// A table is a ring of RingSize entries, each naming the backend that owns
// it; a flow is sent to the owner of entry hash(flow) % RingSize. Every
// backend walks its own permutation of the ring and claims the first entry
// still free, taking turns in proportion to its weight, so
//
//   - each backend owns a share of the ring equal to its share of the
//     total weight (to within one entry), and
//   - changing one backend moves few entries of the others: their
//     permutations do not depend on it.
//
// The table depends only on the set of (ID, Weight) pairs, not on their
// order, so two processes that compute it for the same set agree.
package maglev

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
)

// RingSize is the number of entries of a table. It is prime, so every skip
// of a permutation visits every entry, and about 100 times larger than the
// largest backend set the balancer accepts, which Maglev needs for an even
// spread. Katran uses the same size.
const RingSize = 65537

// Empty is the entry of a table in which no backend has weight.
const Empty = -1

// Backend is one member of a table. ID is its stable identity (for the
// balancer, the real's address): the permutation is derived from it, so it
// must not change while the backend stays. Weight 0 keeps the backend out
// of the table.
type Backend struct {
	ID     string
	Weight uint32
}

// The seeds make the offset and skip two unrelated hashes of one ID.
const (
	offsetSeed = 0x9e3779b97f4a7c15
	skipSeed   = 0xc2b2ae3d27d4eb4f
)

// MurmurHash3's fmix64 constants (public domain).
const (
	fmixShift = 33
	fmixMul1  = 0xff51afd7ed558ccd
	fmixMul2  = 0xc4ceb9fe1a85ec53
)

// Table returns the ring for backends: entry i holds the index in backends
// of the backend that owns it, or Empty for every entry if no backend has
// weight.
func Table(backends []Backend) ([]int, error) {
	if err := checkUnique(backends); err != nil {
		return nil, err
	}
	// Turns are taken in ID order, whatever order the caller used.
	order := make([]int, 0, len(backends))
	var maxWeight uint64
	for i, b := range backends {
		if b.Weight == 0 {
			continue
		}
		order = append(order, i)
		maxWeight = max(maxWeight, uint64(b.Weight))
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(backends[a].ID, backends[b].ID) })

	ring := make([]int, RingSize)
	for i := range ring {
		ring[i] = Empty
	}
	if len(order) == 0 {
		return ring, nil
	}

	walks := make([]permutation, len(order))
	for k, i := range order {
		walks[k] = newPermutation(backends[i].ID)
	}
	// Each round every backend earns its weight in credit and takes one
	// turn per maxWeight of credit: the heaviest backend takes a turn every
	// round, the others proportionally less often, so ring shares follow
	// the weights.
	credit := make([]uint64, len(order))
	for filled := 0; ; {
		for k, i := range order {
			credit[k] += uint64(backends[i].Weight)
			if credit[k] < maxWeight {
				continue
			}
			credit[k] -= maxWeight
			entry := walks[k].next()
			for ring[entry] != Empty {
				entry = walks[k].next()
			}
			ring[entry] = i
			if filled++; filled == RingSize {
				return ring, nil
			}
		}
	}
}

func checkUnique(backends []Backend) error {
	seen := make(map[string]bool, len(backends))
	for _, b := range backends {
		if seen[b.ID] {
			return fmt.Errorf("maglev: backend %q listed twice", b.ID)
		}
		seen[b.ID] = true
	}
	return nil
}

// permutation walks the ring from offset in steps of skip. Both come from
// the backend's ID alone, which is what keeps one backend's walk
// independent of the others.
type permutation struct {
	pos, skip uint64
}

func newPermutation(id string) permutation {
	h := fnv.New64a()
	h.Write([]byte(id))
	sum := h.Sum64()
	offset := mix(sum^offsetSeed) % RingSize
	// skip in [1, RingSize-1]: never 0, and coprime with the prime size.
	skip := mix(sum^skipSeed)%(RingSize-1) + 1
	// next adds skip before reading, so start one step back.
	return permutation{pos: (offset + RingSize - skip) % RingSize, skip: skip}
}

func (p *permutation) next() int {
	p.pos = (p.pos + p.skip) % RingSize
	return int(p.pos)
}

// mix is the 64-bit finaliser of MurmurHash3: FNV alone lets IDs that
// differ in their last byte (adjacent addresses) land on nearby offsets.
func mix(x uint64) uint64 {
	x ^= x >> fmixShift
	x *= fmixMul1
	x ^= x >> fmixShift
	x *= fmixMul2
	x ^= x >> fmixShift
	return x
}
