package processor_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/internal/telemetry"
	"github.com/microtrigger/microtrigger/internal/telemetry/telemetrytest"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/schema"
)

// TestEventOutcomesSum plays a clickstream holding every kind of event end
// (applied, a duplicate, a dead letter, a misrouted record, an erasure with
// events of the erased user after it, an erasure of a user never seen, a
// late event) and scrapes the registry: every outcome of
// microtrigger_processor_events_total is there, their sum is the records
// the processor read from the events topic (its re-routed copy included),
// and the late event is counted apart as well.
func TestEventOutcomesSum(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 4)
	tel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	clock := processor.NewManualClock(t0.Add(-time.Hour))
	cfg := testConfig(t, seeds, clock, t.TempDir(), "outcomes")
	cfg.Meter = tel.MeterProvider()
	in := start(t, cfg)
	producer := kafkatest.Client(t, seeds...)
	sim := &processor.Simulation{Processors: []*processor.Processor{in.p}, Clock: clock, Producer: producer, Topic: schema.TopicEvents}
	ctx := context.Background()

	del := func(d time.Duration, user string) processor.TimedRecord {
		return ev(t, d, user, map[string]any{"type": "delete"})
	}
	dup := page(t, time.Minute, "u1", "/pricing")
	recs := []processor.TimedRecord{
		identify(t, "u1", "ada@example.com"), identify(t, "u2", "bob@example.com"), identify(t, "u3", "cy@example.com"),
		page(t, 0, "u1", "/pricing"), dup, dup,
		track(t, 2*time.Minute, "u2", "Product Viewed", map[string]any{"product_id": "p1", "name": "Leica M6", "price": 800}),
		page(t, 5*time.Minute, "u3", "/pricing"),
		del(10*time.Minute, "u3"),
		page(t, 20*time.Minute, "u3", "/pricing"), page(t, 30*time.Minute, "u3", "/docs"),
		del(40*time.Minute, "u9"),
		{Time: t0.Add(50 * time.Minute), Key: []byte("u4"), Value: []byte("{not json")},
	}
	if err := sim.Play(ctx, recs); err != nil {
		t.Fatal(err)
	}
	// A record on a partition its user's key does not hash to.
	right := kgo.StickyKeyPartitioner(nil).ForTopic(schema.TopicEvents).Partition(&kgo.Record{Key: []byte("u2")}, 4)
	manual := kafkatest.Client(t, append(seeds, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	moved := page(t, time.Hour, "u2", "/pricing")
	kafkatest.Produce(t, manual, &kgo.Record{Topic: schema.TopicEvents, Partition: int32((right + 1) % 4), Value: moved.Value, Timestamp: moved.Time})
	if err := sim.AwaitConsumed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sim.Advance(ctx, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Older than the watermark (t0+2h less the grace).
	if err := sim.Play(ctx, []processor.TimedRecord{page(t, 90*time.Minute, "u1", "/docs")}); err != nil {
		t.Fatal(err)
	}
	if err := sim.Advance(ctx, t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}

	read := len(kafkatest.ReadAll(t, seeds, schema.TopicEvents))
	mfs := telemetrytest.Gather(t, tel.Registry)
	byOutcome := map[string]float64{}
	var sum float64
	for _, m := range mfs["microtrigger_processor_events_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "outcome" {
				byOutcome[l.GetValue()] += m.GetCounter().GetValue()
			}
		}
		sum += m.GetCounter().GetValue()
	}
	want := map[string]float64{"duplicate": 1, "dead_letter": 1, "misrouted": 1, "erased": 2, "erased_dropped": 2}
	for o, n := range want {
		if byOutcome[o] != n {
			t.Errorf("outcome %s: %v, want %v", o, byOutcome[o], n)
		}
	}
	if byOutcome["applied"] == 0 {
		t.Error("no event counted as applied")
	}
	if len(byOutcome) != len(want)+1 {
		b, _ := json.Marshal(byOutcome)
		t.Errorf("outcomes %s, want applied and %v", b, want)
	}
	if sum != float64(read) {
		b, _ := json.Marshal(byOutcome)
		t.Errorf("the outcomes sum to %v, the processor read %d records: %s", sum, read, b)
	}
	var late float64
	for _, m := range mfs["microtrigger_processor_late_events_total"].GetMetric() {
		late += m.GetCounter().GetValue()
	}
	if late != 1 {
		t.Errorf("late events: %v, want 1", late)
	}
}
