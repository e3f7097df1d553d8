package deploy

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/internal/telemetry"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink"
	"github.com/microtrigger/microtrigger/sink/render"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
	"github.com/microtrigger/microtrigger/sink/sendgrid/sendgridtest"
)

// scrapes are the /metrics pages of a running processor and sink.
type scrapes struct{ processor, sink string }

// runningScrapes runs a processor and a sink on the embedded broker, wired
// to their telemetry as `microtrigger processor` and `microtrigger sink`
// wire them, and plays a clickstream through them that makes every kind of
// series appear: an event applied, one dead-lettered, one late, a command
// delivered after SendGrid failed once (a retry), a suppression, a command
// dead-lettered by the sink (expired). It returns their scrapes over HTTP.
func runningScrapes(t *testing.T) scrapes {
	t.Helper()
	_, seeds := kafkatest.Cluster(t, 2)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

	pack, err := rules.Load(os.DirFS("../testdata/rules"), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ptel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	clock := processor.NewManualClock(t0.Add(-time.Hour))
	p, err := processor.New(processor.Config{
		Kafka: seeds, Pack: pack, StateDir: t.TempDir(), Clock: clock, TickInterval: 10 * time.Millisecond,
		TransactionalID: "scrape", Meter: ptel.MeterProvider(), Hooks: ptel.KafkaHooks("processor"),
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, p.Run)

	m, err := render.LoadMapping(mustRead(t, "../testdata/templates/sendgrid.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tm := range m.Templates {
		ids = append(ids, tm.ID)
	}
	sclock := sendgridtest.NewClock(t0.Add(20 * time.Minute))
	const key = "SG.scrape-test-key"
	srv := sendgridtest.New(t, sendgridtest.Options{APIKey: key, Now: sclock.Now, Templates: ids})
	srv.Script(sendgridtest.Status(http.StatusInternalServerError))
	stel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	sg, err := sendgrid.New(sendgrid.Config{APIKey: key, BaseURL: srv.URL, Now: sclock.Now, Sleep: sclock.Sleep,
		HTTPClient: &http.Client{Timeout: 5 * time.Second}, Meter: stel.MeterProvider()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sink.New(sink.Config{
		Kafka: seeds, StateDir: t.TempDir(), Transport: sink.SendGrid(sg, m), Now: sclock.Now, CheckEvery: 10 * time.Millisecond,
		Meter: stel.MeterProvider(), Hooks: stel.KafkaHooks("sink"), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s.Run)

	event := func(d time.Duration, user string, fields map[string]any) processor.TimedRecord {
		f := map[string]any{"userId": user, "timestamp": schema.FormatTime(t0.Add(d)), "messageId": user + d.String() + fields["type"].(string)}
		for k, v := range fields {
			f[k] = v
		}
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		return processor.TimedRecord{Time: t0.Add(d), Key: []byte(user), Value: b}
	}
	identify := func(user string, optIn bool) processor.TimedRecord {
		return event(-time.Minute, user, map[string]any{"type": "identify",
			"traits": map[string]any{"email": user + "@example.com", "email_opt_in": optIn, "timezone": "UTC"}})
	}
	pricing := func(d time.Duration, user string) processor.TimedRecord {
		return event(d, user, map[string]any{"type": "page", "context": map[string]any{"page": map[string]any{"path": "/pricing"}}})
	}
	sim := &processor.Simulation{Processors: []*processor.Processor{p}, Clock: clock, Producer: kafkatest.Client(t, seeds...), Topic: schema.TopicEvents}
	if err := sim.Play(ctx, []processor.TimedRecord{
		identify("u1", true), identify("u2", false),
		pricing(0, "u1"), pricing(3*time.Minute, "u1"), pricing(0, "u2"), pricing(3*time.Minute, "u2"),
		{Time: t0.Add(4 * time.Minute), Key: []byte("u3"), Value: []byte("{not json")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := sim.Advance(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Older than the watermark: late.
	if err := sim.Play(ctx, []processor.TimedRecord{event(30*time.Minute, "u1", map[string]any{"type": "track", "event": "Signed In"})}); err != nil {
		t.Fatal(err)
	}
	expired := schema.SendCommand{ID: schema.CommandID("u4", "pricing-revisit", 1, "old"), UserID: "u4", Email: "u4@example.com",
		Trigger: "pricing-revisit", Step: 1, Template: "pricing-help", Intent: schema.IntentHigh,
		SendAt: t0.Add(-24 * time.Hour), ExpiresAt: t0.Add(-23 * time.Hour), Cause: "old"}
	v, err := schema.MarshalCommand(&expired)
	if err != nil {
		t.Fatal(err)
	}
	kafkatest.Produce(t, kafkatest.Client(t, seeds...), &kgo.Record{Topic: schema.TopicCommands, Key: []byte("u4"), Value: v})
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := srv.AwaitDelivered(actx, 1); err != nil {
		t.Fatal(err)
	}
	kafkatest.Await(t, seeds, schema.TopicCommandsDLQ, 1, time.Minute)
	return scrapes{processor: scrape(t, ptel), sink: scrape(t, stel)}
}

// run runs f until the test ends.
func run(t *testing.T, f func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("stopped: %v", err)
		}
	})
}

// scrape reads /metrics over HTTP, as Prometheus does.
func scrape(t *testing.T, tel *telemetry.Telemetry) string {
	t.Helper()
	srv := httptest.NewServer(tel.Handler(telemetry.Probes{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
