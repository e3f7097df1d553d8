// Package telemetry builds what microtrigger's long-running commands expose to
// operators: an OpenTelemetry meter provider exported in Prometheus format,
// and one HTTP mux with /metrics, /healthz and /readyz. Components receive a
// metric.MeterProvider through their Config and never touch a global
// registry; only the CLI constructs this package's values.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Telemetry is a Prometheus registry fed by an OpenTelemetry meter provider.
type Telemetry struct {
	Registry *prometheus.Registry
	Meters   *sdkmetric.MeterProvider
}

// New builds a registry with Go runtime and process collectors and a meter
// provider exporting into it.
func New() (*Telemetry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	return &Telemetry{Registry: reg, Meters: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))}, nil
}

// MeterProvider returns the provider components take in their Config.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.Meters }

// Handler serves /metrics, /healthz (the process is up) and /readyz: 200
// when ready returns nil, else 503 with its error, which says what the
// component waits for (an assignment, a restore, the cluster).
func (t *Telemetry) Handler(ready func() error) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}

// Serve serves h on addr until ctx ends. An empty addr serves nothing.
func Serve(ctx context.Context, addr string, h http.Handler) error {
	if addr == "" {
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	return ServeListener(ctx, ln, h)
}

// ServeListener serves h on ln until ctx ends, then shuts down gracefully.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return nil
	}
}
