// Package telemetrytest holds test helpers for what the processor and the
// sink expose to operators: the metric families a registry gathers, the
// bucket boundaries of a histogram, the text of a scrape. Production code
// never imports it.
package telemetrytest

import (
	"sort"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Gather returns the metric families g holds, by name, and fails the test
// if gathering fails (an inconsistent registry: a name registered twice
// with different help or labels).
func Gather(t testing.TB, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// Buckets returns the finite upper bounds of the first series of a
// histogram family, in order, and the cumulative count of each.
func Buckets(mf *dto.MetricFamily) (bounds []float64, counts []uint64) {
	if mf == nil || len(mf.GetMetric()) == 0 || mf.GetMetric()[0].GetHistogram() == nil {
		return nil, nil
	}
	bs := mf.GetMetric()[0].GetHistogram().GetBucket()
	sort.Slice(bs, func(i, j int) bool { return bs[i].GetUpperBound() < bs[j].GetUpperBound() })
	for _, b := range bs {
		bounds = append(bounds, b.GetUpperBound())
		counts = append(counts, b.GetCumulativeCount())
	}
	return bounds, counts
}

// Names returns the sorted names of the families in mfs.
func Names(mfs map[string]*dto.MetricFamily) []string {
	out := make([]string, 0, len(mfs))
	for n := range mfs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
