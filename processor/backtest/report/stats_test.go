package report

import (
	"math"
	"testing"
)

func TestNewcombe(t *testing.T) {
	// Newcombe (1998), Table II, examples (a) to (d): 56/70 − 48/80,
	// 9/10 − 3/10, 6/7 − 2/7 and 5/56 − 0/29, method 10.
	for _, c := range []struct {
		x1, n1, x2, n2 int64
		lo, hi         float64
	}{
		{56, 70, 48, 80, 0.0524, 0.3339},
		{9, 10, 3, 10, 0.1705, 0.8090},
		{6, 7, 2, 7, 0.0582, 0.8062},
		{5, 56, 0, 29, -0.0381, 0.1926},
	} {
		_, lo, hi, ok := Newcombe(c.x1, c.n1, c.x2, c.n2)
		if !ok || math.Abs(lo-c.lo) > 5e-5 || math.Abs(hi-c.hi) > 5e-5 {
			t.Errorf("%d/%d − %d/%d: [%.4f, %.4f], want [%.4f, %.4f]", c.x1, c.n1, c.x2, c.n2, lo, hi, c.lo, c.hi)
		}
	}
	if _, _, _, ok := Newcombe(1, 2, 0, 0); ok {
		t.Error("an empty group has no interval")
	}
}

func TestWilson(t *testing.T) {
	// Newcombe (1998, Statistics in Medicine 17:857), Table I: 81/263 → 0.2553–0.3662.
	lo, hi := wilson(81, 263, z95)
	if math.Abs(lo-0.2553) > 5e-5 || math.Abs(hi-0.3662) > 5e-5 {
		t.Errorf("81/263: [%.4f, %.4f]", lo, hi)
	}
	if lo, hi := wilson(0, 10, z95); lo != 0 || math.Abs(hi-0.2775) > 5e-5 {
		t.Errorf("0/10: [%.4f, %.4f]", lo, hi)
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{1, 2, 3, 4}
	if q := quantile(xs, 0.5); q != 2.5 {
		t.Errorf("median %v", q)
	}
	if q := quantile(xs, 0.25); q != 1.75 {
		t.Errorf("p25 %v", q)
	}
	if q := quantile([]float64{7}, 0.75); q != 7 {
		t.Errorf("single %v", q)
	}
}
