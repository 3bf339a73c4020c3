package nat

import "fmt"

// MaxSlots bounds the backend map of one service. Each slot is a map element
// the hash can land on, so a backend's share of new flows is its slot count
// over the total; 64 keeps the map small while still resolving weights to
// about 1.5%.
const MaxSlots = 64

// slots turns weights into slot counts, index for index.
//
// Weights are first divided by their greatest common divisor, so {2, 2} and
// {100, 100} both become one slot each and small ratios such as 3:1 are
// exact. Only when the reduced weights add up to more than MaxSlots are they
// scaled down to MaxSlots by largest remainder, with every non-zero weight
// keeping at least one slot: a backend the caller wants to receive traffic
// must stay reachable, even if that slightly over-serves it.
func slots(weights []uint32) ([]int, error) {
	out := make([]int, len(weights))
	var g, sum uint64
	live := 0
	for _, w := range weights {
		if w == 0 {
			continue
		}
		live++
		g = gcd(g, uint64(w))
	}
	if live == 0 {
		return out, nil
	}
	if live > MaxSlots {
		return nil, fmt.Errorf("%d backends with a non-zero weight, at most %d fit", live, MaxSlots)
	}
	reduced := make([]uint64, len(weights))
	for i, w := range weights {
		reduced[i] = uint64(w) / g
		sum += reduced[i]
	}
	if sum <= MaxSlots {
		for i, w := range reduced {
			out[i] = int(w)
		}
		return out, nil
	}

	// The ideal share of backend i is w[i]*MaxSlots/sum slots. Comparing
	// w[i]*MaxSlots - out[i]*sum (the remainder scaled by sum) keeps the
	// arithmetic in integers: weights are uint32 and there are at most
	// MaxSlots of them, so nothing here overflows an int64.
	total := 0
	for i, w := range reduced {
		if w == 0 {
			continue
		}
		out[i] = max(1, int(w*MaxSlots/sum))
		total += out[i]
	}
	deficit := func(i int) int64 {
		return int64(reduced[i])*MaxSlots - int64(out[i])*int64(sum)
	}
	for total < MaxSlots {
		best := -1
		for i, w := range weights {
			if w != 0 && (best < 0 || deficit(i) > deficit(best)) {
				best = i
			}
		}
		out[best]++
		total++
	}
	for total > MaxSlots {
		best := -1
		for i := range weights {
			if out[i] > 1 && (best < 0 || deficit(i) < deficit(best)) {
				best = i
			}
		}
		out[best]--
		total--
	}
	return out, nil
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
