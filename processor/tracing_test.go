package processor_test

import (
	"context"
	"testing"
	"testing/fstest"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/internal/tracing"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/schema"
)

// TestTracesFromEventToCommand publishes an event whose record carries a
// traceparent header (a traced tracker): the send-command it decides
// carries a traceparent of the same trace, whose span is a child of the
// event's and linked to the span of the batch transaction that wrote it;
// the batch's span is linked to the event's. A command of an untraced
// event is in the batch's trace.
func TestTracesFromEventToCommand(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 1)
	pack, err := rules.Load(fstest.MapFS{"pack.yaml": {Data: []byte(`policy:
  grace: 0s
  consent:
    required: false
triggers:
  - name: signed-in
    intent: high
    on: [Signed In]
    steps:
      - template: welcome-back
`)}}, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	clock := processor.NewManualClock(t0)
	cfg := testConfig(t, seeds, clock, t.TempDir(), "tracing")
	cfg.Pack, cfg.Tracer = pack, tp
	in := start(t, cfg)
	kafkatest.Eventually(t, time.Minute, "ready", in.p.Ready)

	ctx, tracker := tp.Tracer("tracker").Start(context.Background(), "publish event")
	tracker.End()
	traced := ev(t, 0, "u1", map[string]any{"type": "track", "event": "Signed In"})
	plain := ev(t, 0, "u2", map[string]any{"type": "track", "event": "Signed In"})
	r1 := &kgo.Record{Topic: schema.TopicEvents, Key: traced.Key, Value: traced.Value, Timestamp: traced.Time}
	tracing.Inject(ctx, r1)
	r2 := &kgo.Record{Topic: schema.TopicEvents, Key: plain.Key, Value: plain.Value, Timestamp: plain.Time}
	rec := func(tr processor.TimedRecord) *kgo.Record {
		return &kgo.Record{Topic: schema.TopicEvents, Key: tr.Key, Value: tr.Value, Timestamp: tr.Time}
	}
	producer := kafkatest.Client(t, seeds...)
	kafkatest.Produce(t, producer, rec(identify(t, "u1", "ada@example.com")), rec(identify(t, "u2", "bob@example.com")))
	kafkatest.Produce(t, producer, r1, r2)

	cmds := kafkatest.Await(t, seeds, schema.TopicCommands, 2, time.Minute)
	byUser := map[string]trace.SpanContext{}
	for _, r := range cmds {
		c, err := schema.UnmarshalCommand(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		byUser[c.UserID] = tracing.SpanContext(r)
	}
	want := tracker.SpanContext()
	if sc := byUser["u1"]; !sc.IsValid() || sc.TraceID() != want.TraceID() || sc.SpanID() == want.SpanID() {
		t.Fatalf("u1's command carries %v, want a span of the event's trace %s", sc, want.TraceID())
	}
	if sc := byUser["u2"]; !sc.IsValid() || sc.TraceID() == want.TraceID() {
		t.Errorf("u2's command (an untraced event) carries %v, want the batch's own trace", sc)
	}
	in.stop(t)

	var batch, command, plainBatch, plainCommand sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		switch {
		case s.Name() == "microtrigger.processor.command" && s.SpanContext().SpanID() == byUser["u1"].SpanID():
			command = s
		case s.Name() == "microtrigger.processor.command" && s.SpanContext().SpanID() == byUser["u2"].SpanID():
			plainCommand = s
		case s.Name() == "microtrigger.processor.batch":
			for _, l := range s.Links() {
				if l.SpanContext.SpanID() == want.SpanID() {
					batch = s
				}
			}
			if s.SpanContext().TraceID() == byUser["u2"].TraceID() {
				plainBatch = s
			}
		}
	}
	if batch == nil || command == nil {
		t.Fatalf("spans: batch linked to the event %v, command of u1 %v; recorded %d", batch != nil, command != nil, len(spans.Ended()))
	}
	if command.Parent().SpanID() != want.SpanID() {
		t.Errorf("the command's span has parent %s, want the event's %s", command.Parent().SpanID(), want.SpanID())
	}
	if len(command.Links()) != 1 || command.Links()[0].SpanContext.SpanID() != batch.SpanContext().SpanID() {
		t.Errorf("the command's span links %v, want the batch's span", command.Links())
	}
	if plainBatch == nil || plainCommand == nil || plainCommand.Parent().SpanID() != plainBatch.SpanContext().SpanID() {
		t.Errorf("u2's command span %v is not a child of a batch span %v", plainCommand != nil, plainBatch != nil)
	}
}
