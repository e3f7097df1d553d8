package telemetry_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/microtrigger/microtrigger/internal/telemetry"
)

func TestHandler(t *testing.T) {
	tel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	c, _ := tel.MeterProvider().Meter("test").Int64Counter("microtrigger_test_things_total")
	c.Add(context.Background(), 3)
	var ready, stuck atomic.Bool
	srv := httptest.NewServer(tel.Handler(telemetry.Probes{
		Live: func() error {
			if stuck.Load() {
				return errors.New("stuck: the loop has not come round for 3m")
			}
			return nil
		},
		Ready: func() error {
			if !ready.Load() {
				return errors.New("restoring partitions")
			}
			return nil
		},
	}))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	stuck.Store(true)
	if code, body := get("/healthz"); code != 503 || body != "unhealthy: stuck: the loop has not come round for 3m\n" {
		t.Errorf("/healthz while stuck: %d %q, want 503 and the reason", code, body)
	}
	stuck.Store(false)
	if code, body := get("/readyz"); code != 503 || body != "not ready: restoring partitions\n" {
		t.Errorf("/readyz while restoring: %d %q, want 503 and the reason", code, body)
	}
	ready.Store(true)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz when ready: %d", code)
	}
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, "microtrigger_test_things_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics: %d\n%s", code, body)
	}
}

// TestTracing: without OTEL_EXPORTER_OTLP_* there is no tracer; with an
// endpoint, spans reach an OTLP receiver over HTTP (a loopback server here)
// by the time shutdown returns.
func TestTracing(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	shutdown, err := tel.StartTracing(context.Background(), "microtrigger-test")
	if tp := tel.TracerProvider(); err != nil || tp != nil {
		t.Fatalf("tracing without an endpoint: %v %v", tp, err)
	}
	if err := shutdown(); err != nil {
		t.Fatal(err)
	}

	got := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r.Method + " " + r.URL.Path + " " + strconv.Itoa(len(b))
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	shutdown, err = tel.StartTracing(context.Background(), "microtrigger-test")
	tp := tel.TracerProvider()
	if err != nil || tp == nil {
		t.Fatalf("tracing with an endpoint: %v %v", tp, err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "one span")
	span.End()
	if err := shutdown(); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-got:
		if !strings.HasPrefix(req, "POST /v1/traces ") || strings.HasSuffix(req, " 0") {
			t.Errorf("the receiver got %q, want a POST of spans to /v1/traces", req)
		}
	default:
		t.Fatal("no span reached the receiver by the end of shutdown")
	}
}
