package telemetry

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// StartTracing sets up the tracer provider of a component named service
// (service.name, unless OTEL_SERVICE_NAME says otherwise), which
// TracerProvider then returns: spans exported by OTLP over HTTP when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set
// (the exporter reads the other OTEL_EXPORTER_OTLP_* variables: headers,
// TLS, timeout, compression), none otherwise. shutdown exports what is
// buffered, within 5s.
func (t *Telemetry) StartTracing(ctx context.Context, service string) (shutdown func() error, err error) {
	tp, shutdown, err := tracing(ctx, service)
	if tp != nil {
		t.tracer = tp
	}
	return shutdown, err
}

// TracerProvider returns the provider StartTracing set up, or nil: no
// tracing.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tracer }

func tracing(ctx context.Context, service string) (*sdktrace.TracerProvider, func() error, error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, func() error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: OTLP trace exporter (check OTEL_EXPORTER_OTLP_*): %w", err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", service)), resource.WithFromEnv())
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: trace resource (check OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	p := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return p, func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(sctx); err != nil {
			return fmt.Errorf("telemetry: export the last spans: %w", err)
		}
		return nil
	}, nil
}
