package processor

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/internal/telemetry"
	"github.com/microtrigger/microtrigger/internal/telemetry/telemetrytest"
)

// TestHistogramBuckets: each duration histogram has boundaries chosen for
// its quantity, in seconds, so that a typical observation lands in a bucket
// of its own size and not in the first one (OpenTelemetry's default
// boundaries start at 5).
func TestHistogramBuckets(t *testing.T) {
	tel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics(tel.MeterProvider())
	ctx := context.Background()
	m.batchSeconds.Record(ctx, 0.003)
	m.restoreSecs.Record(ctx, 42)
	mfs := telemetrytest.Gather(t, tel.Registry)
	for _, c := range []struct {
		name   string
		bounds []float64
		le     float64 // the smallest bound holding the observation
	}{
		{"microtrigger_processor_batch_duration_seconds",
			[]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}, 0.005},
		{"microtrigger_processor_restore_duration_seconds",
			[]float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}, 60},
	} {
		bounds, counts := telemetrytest.Buckets(mfs[c.name])
		if !slices.Equal(bounds, c.bounds) {
			t.Errorf("%s: boundaries %v, want %v", c.name, bounds, c.bounds)
			continue
		}
		for i, b := range bounds {
			want := uint64(0)
			if b >= c.le {
				want = 1
			}
			if counts[i] != want {
				t.Errorf("%s: le=%g holds %d, want %d", c.name, b, counts[i], want)
			}
		}
	}
}

// TestConsumerLag: the lag of a partition is its high watermark minus the
// next offset to process, never negative, and absent while the high
// watermark is unknown.
func TestConsumerLag(t *testing.T) {
	tel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics(tel.MeterProvider())
	m.observe(tel.MeterProvider(), func() map[int32]Progress {
		return map[int32]Progress{
			0: {Committed: 40, HighWatermark: 100},
			1: {Committed: 7, HighWatermark: 7},
			2: {Committed: 12, HighWatermark: 10}, // a fetch older than the commit
			3: {Committed: 5, HighWatermark: -1},
		}
	}, time.Now)
	got := map[string]float64{}
	for _, s := range telemetrytest.Gather(t, tel.Registry)["microtrigger_processor_consumer_lag_records"].GetMetric() {
		got[s.GetLabel()[0].GetValue()] = s.GetGauge().GetValue()
	}
	if want := map[string]float64{"0": 60, "1": 0, "2": 0}; !maps.Equal(got, want) {
		t.Errorf("consumer lag by partition %v, want %v", got, want)
	}
}
