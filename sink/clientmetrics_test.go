package sink_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/internal/telemetry"
	"github.com/microtrigger/microtrigger/internal/telemetry/telemetrytest"
	"github.com/microtrigger/microtrigger/sink"
	"github.com/microtrigger/microtrigger/sink/sendgrid/sendgridtest"
)

// TestClientMetrics runs a sink with franz-go's kprom hooks: the scrape
// has its group client's records fetched from send-commands and produced
// to the ledger's changelog under microtrigger_sink_, and every ledger
// write timed.
func TestClientMetrics(t *testing.T) {
	h := newHarness(t, 2, sendgridtest.Options{})
	tel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range 20 {
		recs = append(recs, record(t, command(i, 7, "cart-reminder")))
	}
	kafkatest.Produce(t, kafkatest.Client(t, h.seeds...), recs...)
	stop := h.start(sink.Config{StateDir: t.TempDir(), Transport: h.transport(nil), Meter: tel.MeterProvider(), Hooks: tel.KafkaHooks("sink")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.srv.AwaitDelivered(ctx, 20); err != nil {
		t.Fatal(err)
	}
	awaitCommitted(t, h.seeds, "microtrigger-sink", 30*time.Second)
	mfs := telemetrytest.Gather(t, tel.Gatherer())
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	byTopic := func(name string) map[string]float64 {
		out := map[string]float64{}
		for _, m := range mfs[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "topic" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
		return out
	}
	if got := byTopic("microtrigger_sink_fetch_records_total"); got["send-commands"] < 20 {
		t.Errorf("records fetched by topic %v, want the 20 send-commands", got)
	}
	if got := byTopic("microtrigger_sink_produce_records_total"); got["sink-changelog"] < 20 {
		t.Errorf("records produced by topic %v, want the ledger's changelog", got)
	}
	var writes uint64
	for _, m := range mfs["microtrigger_sink_ledger_write_duration_seconds"].GetMetric() {
		writes += m.GetHistogram().GetSampleCount()
	}
	if writes == 0 {
		t.Error("no ledger write timed")
	}
}
