// Package telemetrytest holds test helpers for what the processor and the
// sink expose to operators: the metric families a registry gathers, the
// bucket boundaries of a histogram; and promtool, to check scrapes and
// rules as Prometheus does. Production code never imports it.
package telemetrytest

import (
	"errors"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/microtrigger/microtrigger/internal/tooltest"
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

// Promtool returns the path of Prometheus's promtool (Debian's package
// prometheus installs it). Without one on PATH the test is skipped, saying
// how to install it, or fails when the environment variable CI is set: CI
// installs it, so there a missing promtool is a broken setup, not a
// reason to check nothing.
func Promtool(t testing.TB) string {
	t.Helper()
	return tooltest.Need(t, "promtool", "apt-get install prometheus")
}

// RunPromtool runs promtool with args and stdin, and returns its combined
// output and whether it exited 0.
func RunPromtool(t testing.TB, stdin string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(Promtool(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run promtool %s: %v", strings.Join(args, " "), err)
	}
	return string(out), err == nil
}
