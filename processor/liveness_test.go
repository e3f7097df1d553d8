package processor_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/internal/telemetry"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/schema"
)

// get asks a probe and returns its status and body.
func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestLivenessReportsAStuckLoop holds the processor's EndTxn in the broker
// (Kafka answers everything else) so that its loop cannot come round:
// /healthz answers 200 until the clock has moved past StuckAfter since the
// loop's last turn, then 503 saying for how long it is stuck; once the
// request is let go, the loop comes round and /healthz answers 200 again.
func TestLivenessReportsAStuckLoop(t *testing.T) {
	cluster, seeds := kafkatest.Cluster(t, 1)
	var (
		mu      sync.Mutex
		armed   bool
		held    = make(chan struct{})
		release = make(chan struct{})
	)
	cluster.ControlKey(int16(kmsg.EndTxn), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		mu.Lock()
		hold := armed
		armed = false
		mu.Unlock()
		if hold {
			close(held)
			cluster.SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	clock := processor.NewManualClock(t0)
	cfg := testConfig(t, seeds, clock, t.TempDir(), "liveness")
	cfg.StuckAfter = time.Minute
	in := start(t, cfg)
	tel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(tel.Handler(telemetry.Probes{Live: in.p.Liveness, Ready: in.p.Readiness}))
	defer srv.Close()
	kafkatest.Eventually(t, time.Minute, "ready", in.p.Ready)
	if code, body := get(t, srv, "/healthz"); code != 200 {
		t.Fatalf("/healthz of a running processor: %d %s", code, body)
	}

	mu.Lock()
	armed = true
	mu.Unlock()
	ev := page(t, 0, "u1", "/pricing")
	kafkatest.Produce(t, kafkatest.Client(t, seeds...), &kgo.Record{Topic: schema.TopicEvents, Key: ev.Key, Value: ev.Value, Timestamp: ev.Time})
	<-held
	if code, body := get(t, srv, "/healthz"); code != 200 {
		t.Errorf("/healthz within StuckAfter: %d %s", code, body)
	}
	clock.Set(t0.Add(90 * time.Second))
	code, body := get(t, srv, "/healthz")
	if code != 503 || !strings.Contains(body, "stuck: the processing loop has not come round for 1m30s") {
		t.Errorf("/healthz with the loop held for 90s: %d %q, want 503 and how long", code, body)
	}
	close(release)
	kafkatest.Eventually(t, time.Minute, "alive again once the transaction ends", func() bool { return in.p.Liveness() == nil })
	if code, body := get(t, srv, "/healthz"); code != 200 {
		t.Errorf("/healthz once the loop comes round: %d %s", code, body)
	}
}
