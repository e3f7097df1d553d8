package sink_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/internal/tracing"
	"github.com/microtrigger/microtrigger/sink"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
	"github.com/microtrigger/microtrigger/sink/sendgrid/sendgridtest"
)

// TestTracesToTheSendGridRequest publishes two send-commands whose records
// carry traceparent headers (as the processor writes them) and one
// without: they go in one SendGrid request, whose span is a child of the
// first traced command's span and linked to the other's, and the request
// carries the span's traceparent to SendGrid.
func TestTracesToTheSendGridRequest(t *testing.T) {
	h := newHarness(t, 1, sendgridtest.Options{})
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	var parents []trace.SpanContext
	producer := kafkatest.Client(t, h.seeds...)
	for i := range 3 {
		r := record(t, command(i, 3, "cart-reminder"))
		if i < 2 {
			ctx, s := tp.Tracer("processor").Start(context.Background(), "command")
			s.End()
			tracing.Inject(ctx, r)
			parents = append(parents, s.SpanContext())
		}
		kafkatest.Produce(t, producer, r)
	}
	stop := h.start(sink.Config{StateDir: t.TempDir(), MaxBatch: 10,
		Transport: h.transport(func(c *sendgrid.Config) { c.Tracer = tp })})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.srv.AwaitDelivered(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	reqs := h.srv.Accepted()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want the 3 commands in one", len(reqs))
	}
	sent := tracing.FromTraceparent(reqs[0].Header.Get("traceparent"))
	if !sent.IsValid() || sent.TraceID() != parents[0].TraceID() {
		t.Fatalf("the request carries traceparent %q, want one of trace %s", reqs[0].Header.Get("traceparent"), parents[0].TraceID())
	}
	var req sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == "sendgrid.mail_send" && s.SpanContext().SpanID() == sent.SpanID() {
			req = s
		}
	}
	if req == nil {
		t.Fatalf("no span of the request among %d", len(spans.Ended()))
	}
	if req.Parent().SpanID() != parents[0].SpanID() {
		t.Errorf("the request's span has parent %s, want the first command's %s", req.Parent().SpanID(), parents[0].SpanID())
	}
	if len(req.Links()) != 1 || req.Links()[0].SpanContext.SpanID() != parents[1].SpanID() {
		t.Errorf("the request's span links %v, want the second command's span", req.Links())
	}
}
