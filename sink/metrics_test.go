package sink

import (
	"context"
	"slices"
	"testing"

	"github.com/microtrigger/microtrigger/internal/telemetry"
	"github.com/microtrigger/microtrigger/internal/telemetry/telemetrytest"
)

// TestHistogramBuckets: the poll duration has boundaries from a
// millisecond to the retry budget's minutes, so that a poll delivered in
// 40 ms lands in the 50 ms bucket rather than OpenTelemetry's first (5).
func TestHistogramBuckets(t *testing.T) {
	tel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics(tel.MeterProvider())
	m.batch.Record(context.Background(), 0.04)
	bounds, counts := telemetrytest.Buckets(telemetrytest.Gather(t, tel.Registry)["microtrigger_sink_batch_duration_seconds"])
	want := []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900}
	if !slices.Equal(bounds, want) {
		t.Fatalf("boundaries %v, want %v", bounds, want)
	}
	if i := slices.Index(bounds, 0.05); counts[i-1] != 0 || counts[i] != 1 {
		t.Errorf("0.04 s counted in le=%g: %d, le=%g: %d; want 0 and 1", bounds[i-1], counts[i-1], bounds[i], counts[i])
	}
}
