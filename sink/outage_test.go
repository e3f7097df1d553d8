package sink_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/internal/telemetry"
	"github.com/microtrigger/microtrigger/internal/telemetry/telemetrytest"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink"
	"github.com/microtrigger/microtrigger/sink/render"
	"github.com/microtrigger/microtrigger/sink/sendgrid/sendgridtest"
)

// TestRidesThroughBrokerOutage stops the broker under a running sink and
// starts it again on the same port and data directory, twice: while the
// sink is idle, and while SendGrid holds a request (accepted, so the ledger
// must record it with the broker away). The sink stays up, is unready while
// the broker is away and ready again once it is back, and delivers every
// command, none twice, with no dead letter.
func TestRidesThroughBrokerOutage(t *testing.T) {
	b, seeds := kafkatest.Restartable(t, 2)
	clock := sendgridtest.NewClock(epoch)
	m := loadMapping(t)
	h := &harness{t: t, seeds: seeds, clock: clock, logs: &lockedBuffer{}, m: m,
		srv: sendgridtest.New(t, sendgridtest.Options{APIKey: apiKey, Now: clock.Now, Templates: templateIDs(m)})}
	var mu sync.Mutex
	delivered := map[string]int{}
	tel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	s, err := sink.New(sink.Config{
		Meter: tel.MeterProvider(),
		Kafka: append(append([]kgo.Opt(nil), seeds...), kgo.InstanceID("sink-0")), StateDir: t.TempDir(), Transport: h.transport(nil),
		Now: clock.Now, Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnDelivered: func(c schema.SendCommand) { mu.Lock(); delivered[c.ID]++; mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sink: %v", err)
		}
		if t.Failed() || os.Getenv("MICROTRIGGER_TEST_DEBUG") != "" {
			t.Log(h.logs.String())
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(delivered) }
	publish := func(from, to int) {
		producer := kafkatest.Client(t, seeds...)
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, record(t, command(i, 10, "cart-reminder")))
		}
		kafkatest.Produce(t, producer, recs...)
		producer.Close()
	}
	running := func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the sink stopped: %v", err)
		default:
		}
		return true
	}

	// What the kubelet and Prometheus see: /readyz, /healthz, the gauge.
	probes := httptest.NewServer(tel.Handler(telemetry.Probes{Live: s.Liveness, Ready: s.Readiness}))
	defer probes.Close()
	check := func(when string, ready int) {
		t.Helper()
		status := func(path string) int {
			resp, err := probes.Client().Get(probes.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if want, code := map[int]int{0: 503, 1: 200}[ready], status("/readyz"); code != want {
			t.Errorf("/readyz %s: %d, want %d", when, code, want)
		}
		if code := status("/healthz"); code != 200 {
			t.Errorf("/healthz %s: %d: waiting for Kafka is not being stuck", when, code)
		}
		mf := telemetrytest.Gather(t, tel.Registry)["microtrigger_sink_ready"]
		if len(mf.GetMetric()) != 1 || mf.GetMetric()[0].GetGauge().GetValue() != float64(ready) {
			t.Errorf("microtrigger_sink_ready %s: %v, want %d", when, mf.GetMetric(), ready)
		}
	}

	publish(0, 20)
	kafkatest.Eventually(t, time.Minute, "ready, 20 delivered", func() bool { return running() && s.Ready() && count() == 20 })
	check("before the outage", 1)

	b.Stop()
	kafkatest.Eventually(t, time.Minute, "unready while the broker is down", func() bool { return running() && !s.Ready() })
	check("while the broker is down", 0)
	b.Start()
	kafkatest.Eventually(t, 2*time.Minute, "ready again once the broker is back", func() bool { return running() && s.Ready() })
	check("once the broker is back", 1)

	publish(20, 40)
	kafkatest.Eventually(t, time.Minute, "40 delivered", func() bool { return running() && count() == 40 })

	stopped := make(chan struct{})
	h.srv.Script(sendgridtest.Fault{Before: func(sendgridtest.Request) { b.Stop(); close(stopped) }})
	publish(40, 60)
	<-stopped
	kafkatest.Eventually(t, time.Minute, "unready while the broker is down mid-request", func() bool { return running() && !s.Ready() })
	b.Start()
	kafkatest.Eventually(t, 2*time.Minute, "60 delivered and ready", func() bool { return running() && s.Ready() && count() == 60 })
	if d := readDLQ(t, seeds); len(d) != 0 {
		t.Errorf("dead letters: %v", d)
	}
	if d := h.srv.Duplicates(); len(d) != 0 {
		t.Errorf("sent twice: %v", d)
	}
	mu.Lock()
	for id, n := range delivered {
		if n != 1 {
			t.Errorf("command %s delivered %d times", id, n)
		}
	}
	mu.Unlock()
}

// TestSurplusSinkIsReady: with more sinks than partitions, the one left
// without a partition is ready too (it has joined and has nothing to
// restore), and neither is ready before it has joined.
func TestSurplusSinkIsReady(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 1)
	l, err := render.LoadLocal(os.DirFS("../testdata/templates"), render.Address{Email: "hello@shop.example"})
	if err != nil {
		t.Fatal(err)
	}
	var sinks []*sink.Sink
	for range 2 {
		s, err := sink.New(sink.Config{Kafka: seeds, StateDir: t.TempDir(), Transport: sink.Console(&lockedBuffer{}, l)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Readiness(); err == nil || !strings.Contains(err.Error(), "no partition assignment") {
			t.Fatalf("readiness before Run: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
		sinks = append(sinks, s)
	}
	kafkatest.Eventually(t, time.Minute, "both sinks ready", func() bool { return sinks[0].Ready() && sinks[1].Ready() })
}

// TestLedgerRestoreIsRetried: the ledger of an assigned partition cannot be
// restored at first (the broker refuses to list the changelog's offsets,
// as a broker going away mid-rebalance does); the sink, idle, retries
// until it can, is unready until then and ready after.
func TestLedgerRestoreIsRetried(t *testing.T) {
	cluster, seeds := kafkatest.Cluster(t, 2)
	var refused atomic.Int32
	cluster.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.ListOffsetsRequest)
		if len(r.Topics) != 1 || r.Topics[0].Topic != schema.TopicSinkChangelog || refused.Load() >= 3 {
			cluster.KeepControl()
			return nil, nil, false
		}
		refused.Add(1)
		cluster.KeepControl()
		resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewListOffsetsResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.UnknownServerError.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	l, err := render.LoadLocal(os.DirFS("../testdata/templates"), render.Address{Email: "hello@shop.example"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	s, err := sink.New(sink.Config{Kafka: seeds, StateDir: t.TempDir(), Transport: sink.Console(&lockedBuffer{}, l),
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	kafkatest.Eventually(t, time.Minute, "the restore refused", func() bool { return refused.Load() >= 1 })
	if s.Ready() {
		t.Error("ready with its ledger not restored")
	}
	kafkatest.Eventually(t, time.Minute, "ready once the restore is retried", s.Ready)
	if refused.Load() < 3 || !strings.Contains(logs.String(), "restore ledger; retrying") {
		t.Errorf("%d refusals; logs:\n%s", refused.Load(), logs.String())
	}
}
