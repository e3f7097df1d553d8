package tracing_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/microtrigger/microtrigger/internal/tracing"
)

func TestHeaders(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, c := range []struct {
		name    string
		headers []kgo.RecordHeader
		valid   bool
	}{
		{"none", nil, false},
		{"malformed", []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-zz-01")}}, false},
		{"valid", []kgo.RecordHeader{{Key: "other", Value: []byte("x")}, {Key: "traceparent", Value: []byte(tp)}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &kgo.Record{Headers: c.headers}
			sc := tracing.SpanContext(r)
			if sc.IsValid() != c.valid {
				t.Fatalf("valid %v, want %v", sc.IsValid(), c.valid)
			}
			if sc.IsValid() != tracing.FromTraceparent(tracing.Headers{R: r}.Get("traceparent")).IsValid() {
				t.Error("FromTraceparent disagrees with SpanContext")
			}
		})
	}
	// Inject replaces, never duplicates.
	sc := tracing.FromTraceparent(tp)
	r := &kgo.Record{Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("old")}, {Key: "k", Value: []byte("v")}}}
	tracing.Inject(trace.ContextWithSpanContext(context.Background(), sc), r)
	if n := len(r.Headers); n != 2 || (tracing.Headers{R: r}).Get("traceparent") != tp || (tracing.Headers{R: r}).Get("k") != "v" {
		t.Errorf("headers after Inject: %v", r.Headers)
	}
	// Nothing to inject from a context without a span.
	empty := &kgo.Record{}
	tracing.Inject(context.Background(), empty)
	if len(empty.Headers) != 0 {
		t.Errorf("headers injected from no span: %v", empty.Headers)
	}
}
