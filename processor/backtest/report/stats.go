package report

import (
	"math"
	"sort"
)

// z95 is the standard normal quantile of a two-sided 95% interval.
const z95 = 1.959963984540054

// IntervalMethod names the interval Newcombe computes, for report.json.
const IntervalMethod = "95% Newcombe hybrid score interval (from two Wilson score intervals) for the difference of two independent proportions"

// wilson returns the Wilson score interval of x successes in n trials.
func wilson(x, n int64, z float64) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	nf := float64(n)
	p := float64(x) / nf
	z2 := z * z
	den := 1 + z2/nf
	centre := (p + z2/(2*nf)) / den
	half := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf)) / den
	lo, hi = centre-half, centre+half
	// Exact at the edges (rounding can leave 1e-17 outside [0,1]).
	if x == 0 {
		lo = 0
	}
	if x == n {
		hi = 1
	}
	return max(lo, 0), min(hi, 1)
}

// Newcombe returns the difference of proportions x1/n1 − x2/n2 and its
// hybrid score interval (Newcombe 1998, method 10), which stays inside
// [−1, 1] and behaves with small counts and rates near 0 or 1, where the
// Wald interval does not. ok is false when a group is empty.
func Newcombe(x1, n1, x2, n2 int64) (diff, lo, hi float64, ok bool) {
	if n1 == 0 || n2 == 0 {
		return 0, 0, 0, false
	}
	p1, p2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
	l1, u1 := wilson(x1, n1, z95)
	l2, u2 := wilson(x2, n2, z95)
	diff = p1 - p2
	lo = diff - math.Sqrt((p1-l1)*(p1-l1)+(u2-p2)*(u2-p2))
	hi = diff + math.Sqrt((u1-p1)*(u1-p1)+(p2-l2)*(p2-l2))
	return diff, lo, hi, true
}

// round6 keeps six decimals, so report.json does not depend on the last
// bit of a floating-point computation.
func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// quantile returns the q-quantile of sorted xs by linear interpolation
// between closest ranks (the method of R's default, type 7).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	h := q * float64(len(sorted)-1)
	lo := math.Floor(h)
	i := int(lo)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (h-lo)*(sorted[i+1]-sorted[i])
}

func summarise(secs []float64) *Durations {
	if len(secs) == 0 {
		return nil
	}
	s := append([]float64(nil), secs...)
	sort.Float64s(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return &Durations{
		Median: round6(quantile(s, 0.5)),
		P25:    round6(quantile(s, 0.25)),
		P75:    round6(quantile(s, 0.75)),
		Mean:   round6(sum / float64(len(s))),
	}
}
