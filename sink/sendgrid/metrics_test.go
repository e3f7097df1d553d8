package sendgrid_test

import (
	"context"
	"slices"
	"testing"

	"github.com/microtrigger/microtrigger/internal/telemetry"
	"github.com/microtrigger/microtrigger/internal/telemetry/telemetrytest"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
	"github.com/microtrigger/microtrigger/sink/sendgrid/sendgridtest"
)

// TestRequestDurationBuckets: a request to SendGrid on loopback takes
// milliseconds, and the histogram's boundaries run from 5 ms to the request
// timeout, so it is counted below a second (OpenTelemetry's default
// boundaries would count it in the first bucket, 5 s).
func TestRequestDurationBuckets(t *testing.T) {
	tel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	f := setup(t, sendgridtest.Options{}, func(c *sendgrid.Config) { c.Meter = tel.MeterProvider() })
	if _, err := f.cl.Send(context.Background(), messages(1, "welcome"), newJournal()); err != nil {
		t.Fatal(err)
	}
	bounds, counts := telemetrytest.Buckets(telemetrytest.Gather(t, tel.Registry)["microtrigger_sink_request_duration_seconds"])
	want := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	if !slices.Equal(bounds, want) {
		t.Fatalf("boundaries %v, want %v", bounds, want)
	}
	if i := slices.Index(bounds, 1); counts[i] != 1 {
		t.Errorf("the request is not counted below 1 s: %v", counts)
	}
}
