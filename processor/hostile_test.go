package processor_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/internal/telemetry"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/schema/schematest"
)

// TestHostileEventsLeakNothing plays the hostile corpus, a sentinel in
// every value and key of every kind of bad event, through the processor on
// the embedded broker: each refused record is dead-lettered with its
// reason, and neither the dead letters' headers, nor the logs (at debug
// level), nor the Prometheus scrape hold a byte of the sentinel. (A dead
// letter's key and value are the original record's, by contract.)
func TestHostileEventsLeakNothing(t *testing.T) {
	const sentinel = "SENTINEL-7f3a"
	_, seeds := kafkatest.Cluster(t, 4)
	tel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	var logs schematest.Buffer
	clock := processor.NewManualClock(t0.Add(-time.Hour))
	cfg := testConfig(t, seeds, clock, t.TempDir(), "hostile-1")
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Meter = tel.MeterProvider()
	in := start(t, cfg)
	producer := kafkatest.Client(t, seeds...)
	sim := &processor.Simulation{Processors: []*processor.Processor{in.p}, Clock: clock, Producer: producer, Topic: schema.TopicEvents}

	var recs []processor.TimedRecord
	want := map[string]schematest.Case{}
	for i, c := range schematest.Hostile(sentinel) {
		key := fmt.Sprintf("k%02d", i)
		recs = append(recs, processor.TimedRecord{Time: t0, Key: []byte(key), Value: c.Raw})
		if c.Reason != "" {
			want[key] = c
		}
	}
	ctx := context.Background()
	if err := sim.Play(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := sim.Advance(ctx, t0.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}

	dlq := kafkatest.ReadAll(t, seeds, schema.TopicEventsDLQ)
	if len(dlq) != len(want) {
		t.Fatalf("%d dead letters, want %d", len(dlq), len(want))
	}
	for _, r := range dlq {
		c, ok := want[string(r.Key)]
		if !ok {
			t.Errorf("dead letter of record %s, which is accepted", r.Key)
			continue
		}
		var hs []schema.Header
		for _, h := range r.Headers {
			hs = append(hs, schema.Header{Key: h.Key, Value: h.Value})
			if schematest.Leaked([]byte(h.Key), sentinel) || schematest.Leaked(h.Value, sentinel) {
				t.Errorf("%s: header %s: %q holds the sentinel", c.Name, h.Key, h.Value)
			}
		}
		if d := schema.ParseDeadLetter(r.Key, r.Value, hs); d.Reason != c.Reason || d.Message == "" || string(d.Value) != string(c.Raw) {
			t.Errorf("%s: dead letter %s %q, want %s and the original bytes", c.Name, d.Reason, d.Message, c.Reason)
		}
	}

	if l := logs.Bytes(); schematest.Leaked(l, sentinel) {
		t.Errorf("the logs hold the sentinel:\n%s", l)
	} else if len(l) == 0 {
		t.Error("nothing was logged: the check proves nothing")
	}
	rec := httptest.NewRecorder()
	tel.Handler(telemetry.Probes{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	scrape := rec.Body.String()
	if schematest.Leaked([]byte(scrape), sentinel) {
		t.Errorf("the metrics hold the sentinel:\n%s", scrape)
	}
	for _, c := range want {
		if !strings.Contains(scrape, `reason="`+string(c.Reason)+`"`) {
			t.Errorf("no dead letter counted with reason %s in the scrape", c.Reason)
		}
	}
}
