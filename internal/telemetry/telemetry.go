// Package telemetry builds what microtrigger's long-running commands expose to
// operators: an OpenTelemetry meter provider exported in Prometheus format
// (with franz-go's kprom metrics of the Kafka clients), and one HTTP mux with
// /metrics, /healthz (liveness) and /readyz (readiness). Components receive a
// metric.MeterProvider through their Config and never touch a global
// registry; only the CLI constructs this package's values.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
)

// Telemetry is a Prometheus registry fed by an OpenTelemetry meter
// provider, and one fed by franz-go's kprom plugin.
type Telemetry struct {
	Registry *prometheus.Registry
	Meters   *sdkmetric.MeterProvider
	// kafka holds the Kafka client metrics of KafkaHooks.
	kafka *prometheus.Registry
	// tracer is StartTracing's provider; nil: no tracing.
	tracer trace.TracerProvider
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
	return &Telemetry{Registry: reg, Meters: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)), kafka: prometheus.NewRegistry()}, nil
}

// MeterProvider returns the provider components take in their Config.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.Meters }

// KafkaHooks returns franz-go's kprom plugin for one client, counting into
// the registry as microtrigger_<subsystem>_*: connections and their errors,
// bytes read and written (by broker node_id), records and uncompressed
// bytes fetched and produced (by node_id and topic), and what the client
// buffers. The labels are bounded by the cluster's brokers and the topics
// the client uses. Give the hooks to one client per subsystem: the plugin
// registers its metrics when the client starts, and a second client would
// register the same names.
func (t *Telemetry) KafkaHooks(subsystem string) []kgo.Hook {
	return []kgo.Hook{kprom.NewMetrics("microtrigger",
		kprom.Registerer(t.kafka), kprom.Gatherer(t.kafka),
		kprom.Subsystem(subsystem),
		kprom.FetchAndProduceDetail(kprom.ByNode, kprom.ByTopic, kprom.Records, kprom.UncompressedBytes, kprom.ConsistentNaming),
		kprom.BrokerLabels(kprom.BrokerNodeID),
	)}
}

// Gatherer returns everything /metrics serves: the meter provider's
// metrics, the Go runtime's and the Kafka clients'.
func (t *Telemetry) Gatherer() prometheus.Gatherer {
	return prometheus.Gatherers{t.Registry, prometheus.GathererFunc(t.gatherKafka)}
}

// gatherKafka gathers the kprom metrics. kprom names two gauges (records
// buffered for fetching and producing) with a _total suffix, which
// Prometheus keeps for counters: they are served without it
// (microtrigger_<subsystem>_buffered_fetch_records).
func (t *Telemetry) gatherKafka() ([]*dto.MetricFamily, error) {
	mfs, err := t.kafka.Gather()
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_COUNTER && strings.HasSuffix(mf.GetName(), "_total") {
			mf.Name = proto.String(strings.TrimSuffix(mf.GetName(), "_total"))
		}
	}
	return mfs, err
}

// Probes are what /healthz and /readyz ask. A nil func answers 200.
type Probes struct {
	// Live returns nil while the process makes progress, else why it
	// does not (a stuck main loop): /healthz, the liveness probe, whose
	// failures restart the container.
	Live func() error
	// Ready returns nil when the component can do its work, else what it
	// waits for (an assignment, a restore, the cluster): /readyz, the
	// readiness probe.
	Ready func() error
}

// Handler serves /metrics, /healthz and /readyz: each probe answers 200
// when its func returns nil, else 503 with its error.
func (t *Telemetry) Handler(p Probes) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(t.Gatherer(), promhttp.HandlerOpts{}))
	probe := func(check func() error, ok, failed string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			if check != nil {
				if err := check(); err != nil {
					http.Error(w, failed+err.Error(), http.StatusServiceUnavailable)
					return
				}
			}
			w.Write([]byte(ok))
		}
	}
	mux.HandleFunc("GET /healthz", probe(p.Live, "ok\n", "unhealthy: "))
	mux.HandleFunc("GET /readyz", probe(p.Ready, "ready\n", "not ready: "))
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
