// Package tracing carries W3C trace context (the traceparent and
// tracestate headers) in Kafka record headers, so that a trace goes from
// an event through the processor's send-command to the sink's SendGrid
// request. It holds no tracer: components take a trace.TracerProvider in
// their Config, and only the CLI builds one (internal/telemetry).
package tracing

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HeaderTraceparent is the record header that carries a span's context, as
// in HTTP (W3C Trace Context).
const HeaderTraceparent = "traceparent"

// Propagator is W3C Trace Context, the one format microtrigger reads and
// writes.
func Propagator() propagation.TextMapPropagator { return propagation.TraceContext{} }

// Headers is a propagation.TextMapCarrier over a record's headers.
type Headers struct{ R *kgo.Record }

// Get returns the value of the first header named key, or "".
func (h Headers) Get(key string) string {
	for _, rh := range h.R.Headers {
		if rh.Key == key {
			return string(rh.Value)
		}
	}
	return ""
}

// Set sets the header key to value, replacing any header of that name.
func (h Headers) Set(key, value string) {
	out := h.R.Headers[:0]
	for _, rh := range h.R.Headers {
		if rh.Key != key {
			out = append(out, rh)
		}
	}
	h.R.Headers = append(out, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

// Keys returns the header names.
func (h Headers) Keys() []string {
	out := make([]string, len(h.R.Headers))
	for i, rh := range h.R.Headers {
		out[i] = rh.Key
	}
	return out
}

// SpanContext returns the span context a record's headers carry; it is
// not valid when they carry none (or a malformed one).
func SpanContext(r *kgo.Record) trace.SpanContext {
	if (Headers{r}).Get(HeaderTraceparent) == "" {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(Propagator().Extract(context.Background(), Headers{r}))
}

// Inject writes the span context of ctx into r's headers; nothing when ctx
// holds none.
func Inject(ctx context.Context, r *kgo.Record) { Propagator().Inject(ctx, Headers{r}) }

// FromTraceparent returns the span context of a traceparent header value;
// it is not valid when the value is empty or malformed.
func FromTraceparent(v string) trace.SpanContext {
	if v == "" {
		return trace.SpanContext{}
	}
	c := propagation.MapCarrier{HeaderTraceparent: v}
	return trace.SpanContextFromContext(Propagator().Extract(context.Background(), c))
}
