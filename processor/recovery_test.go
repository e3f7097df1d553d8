package processor_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"sort"
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
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/schema"
)

// logBuffer collects one instance's logs from many goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// cutOnChangelog cuts a network, once armed, right after the client has
// written a batch of changelog records: its transaction is open on the
// broker, with records in it, and is never ended.
type cutOnChangelog struct {
	net    *kafkatest.Network
	armed  atomic.Bool
	once   sync.Once
	killed chan struct{}
}

func (k *cutOnChangelog) OnProduceBatchWritten(_ kgo.BrokerMetadata, topic string, _ int32, _ kgo.ProduceBatchMetrics) {
	if topic == schema.TopicChangelog && k.armed.Load() {
		k.once.Do(func() {
			k.net.Kill()
			close(k.killed)
		})
	}
}

func owned(p *processor.Processor) []int32 {
	var out []int32
	for id := range p.Progress() {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func identities(t testing.TB, from, to int, d time.Duration) []processor.TimedRecord {
	var out []processor.TimedRecord
	for i := from; i < to; i++ {
		u := fmt.Sprintf("u%03d", i)
		out = append(out, ev(t, d, u, map[string]any{"type": "identify", "messageId": u + "-" + d.String(),
			"traits": map[string]any{"email": u + "@example.com", "email_opt_in": true, "timezone": "UTC"}}))
	}
	return out
}

// TestStaticMemberTakesItsPartitionsBack kills an instance (its network
// cut, its client never closed) with a transaction open on the broker, and
// starts it again at once with the same instance id, transactional id and
// volume. The group's timeouts are minutes long, longer than the test
// waits: a restarted dynamic member would get nothing until the dead one
// expired. The static member replaces its predecessor at once and gets its
// own partitions back (the other instance keeps its own), its
// transactional id fences the open transaction, and every event is
// committed. (The embedded broker rebalances once when the returning
// member's subscription differs from the one it last sent, as
// cooperative-sticky's owned partitions do; Kafka compares only the
// protocol and hands the old assignment back.)
func TestStaticMemberTakesItsPartitionsBack(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 4)
	clock := processor.NewManualClock(t0.Add(-time.Hour))
	producer := kafkatest.Client(t, seeds...)
	ctx := context.Background()
	dirA := t.TempDir()
	cfg := func(id, dir string, logs *logBuffer, extra ...kgo.Opt) processor.Config {
		c := testConfig(t, append(append([]kgo.Opt(nil), seeds...), extra...), clock, dir, "txn-"+id)
		c.InstanceID = id
		c.SessionTimeout, c.RebalanceTimeout = 4*time.Minute, 4*time.Minute
		c.Logger = logs.logger()
		return c
	}
	var logsA, logsB, logsA2 logBuffer
	netA := &kafkatest.Network{}
	cut := &cutOnChangelog{net: netA, killed: make(chan struct{})}
	a := start(t, cfg("a", dirA, &logsA, netA.Opt(), kgo.WithHooks(cut)))
	b := start(t, cfg("b", t.TempDir(), &logsB))
	defer func() {
		if t.Failed() {
			t.Logf("a:\n%s\nb:\n%s\na again:\n%s", logsA.String(), logsB.String(), logsA2.String())
		}
	}()
	kafkatest.Eventually(t, time.Minute, "both instances own partitions", func() bool {
		return len(owned(a.p)) > 0 && len(owned(b.p)) > 0 && len(owned(a.p))+len(owned(b.p)) == 4 && a.p.Ready() && b.p.Ready()
	})
	sim := &processor.Simulation{Processors: []*processor.Processor{a.p, b.p}, Clock: clock, Producer: producer, Topic: schema.TopicEvents}
	if err := sim.Play(ctx, identities(t, 0, 40, 0)); err != nil {
		t.Fatal(err)
	}
	ofA, ofB := owned(a.p), owned(b.p)

	cut.armed.Store(true)
	recs := identities(t, 0, 40, time.Minute)
	var batch []*kgo.Record
	for _, r := range recs {
		batch = append(batch, &kgo.Record{Topic: schema.TopicEvents, Key: r.Key, Value: r.Value, Timestamp: r.Time})
	}
	kafkatest.Produce(t, producer, batch...)
	select {
	case <-cut.killed:
	case <-time.After(time.Minute):
		t.Fatal("A wrote no changelog batch to be killed after")
	}
	a.cancel()
	<-a.done
	a.done <- nil

	restarted := time.Now()
	a2 := start(t, cfg("a", dirA, &logsA2))
	sim.Processors = []*processor.Processor{a2.p, b.p}
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := sim.AwaitConsumed(actx); err != nil {
		t.Fatalf("events committed after the restart: %v", err)
	}
	t.Logf("restarted with its instance id: every event committed %v after the restart", time.Since(restarted).Round(time.Millisecond))
	if got := owned(a2.p); fmt.Sprint(got) != fmt.Sprint(ofA) {
		t.Errorf("restarted instance owns %v, it owned %v", got, ofA)
	}
	if got := owned(b.p); fmt.Sprint(got) != fmt.Sprint(ofB) {
		t.Errorf("the other instance owns %v, it owned %v", got, ofB)
	}
	if n := strings.Count(logsB.String(), "partitions revoked") + strings.Count(logsB.String(), "partitions lost"); n != 0 {
		t.Errorf("the other instance gave up partitions %d times", n)
	}
	if !strings.Contains(logsA2.String(), `msg="partitions assigned"`) {
		t.Errorf("the restarted instance logged no assignment:\n%s", logsA2.String())
	}
	// Read with read_committed: a transaction left open would hold the
	// changelog back until its timeout; the fence aborted it.
	if err := sim.Play(ctx, identities(t, 0, 40, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
}

// TestProcessorRidesThroughBrokerOutage stops the broker under a running
// processor and starts it again on the same port and data directory. The
// processor stays up, is unready while the broker is away and ready again
// once it is back, and then decides the emails of the events published
// afterwards, once each.
func TestProcessorRidesThroughBrokerOutage(t *testing.T) {
	b, seeds := kafkatest.Restartable(t, 4)
	clock := processor.NewManualClock(t0.Add(-time.Hour))
	var logs logBuffer
	cfg := testConfig(t, seeds, clock, t.TempDir(), "outage")
	cfg.InstanceID = "outage"
	cfg.Logger = logs.logger()
	tel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Meter = tel.MeterProvider()
	in := start(t, cfg)
	probes := httptest.NewServer(tel.Handler(telemetry.Probes{Live: in.p.Liveness, Ready: in.p.Readiness}))
	defer probes.Close()
	// What the kubelet and Prometheus see: /readyz, /healthz, the gauge.
	check := func(when string, ready int) {
		t.Helper()
		wantCode := map[int]int{0: 503, 1: 200}[ready]
		if code, body := get(t, probes, "/readyz"); code != wantCode {
			t.Errorf("/readyz %s: %d %q, want %d", when, code, body, wantCode)
		}
		if code, body := get(t, probes, "/healthz"); code != 200 {
			t.Errorf("/healthz %s: %d %q: waiting for Kafka is not being stuck", when, code, body)
		}
		mf := telemetrytest.Gather(t, tel.Registry)["microtrigger_processor_ready"]
		if len(mf.GetMetric()) != 1 || mf.GetMetric()[0].GetGauge().GetValue() != float64(ready) {
			t.Errorf("microtrigger_processor_ready %s: %v, want %d", when, mf.GetMetric(), ready)
		}
	}
	defer func() {
		if t.Failed() || os.Getenv("MICROTRIGGER_TEST_DEBUG") != "" {
			t.Logf("logs:\n%s", logs.String())
		}
	}()
	running := func() bool {
		select {
		case err := <-in.done:
			in.done <- err
			t.Fatalf("the processor stopped: %v", err)
		default:
		}
		return true
	}
	producer := kafkatest.Client(t, seeds...)
	sim := &processor.Simulation{Processors: []*processor.Processor{in.p}, Clock: clock, Producer: producer, Topic: schema.TopicEvents}
	ctx := context.Background()
	kafkatest.Eventually(t, time.Minute, "ready", func() bool { return running() && in.p.Ready() })
	if err := sim.Play(ctx, []processor.TimedRecord{
		identify(t, "u1", "ada@example.com"), identify(t, "u2", "bob@example.com"),
		track(t, 0, "u2", "Product Viewed", map[string]any{"product_id": "p9", "name": "Leica M6", "price": 800}),
	}); err != nil {
		t.Fatal(err)
	}

	check("before the outage", 1)

	b.Stop()
	kafkatest.Eventually(t, time.Minute, "unready while the broker is down", func() bool { return running() && !in.p.Ready() })
	check("while the broker is down", 0)
	b.Start()
	kafkatest.Eventually(t, 2*time.Minute, "ready again once the broker is back", func() bool { return running() && in.p.Ready() })
	check("once the broker is back", 1)

	if err := sim.Play(ctx, []processor.TimedRecord{
		page(t, 0, "u1", "/pricing"), page(t, 3*time.Minute, "u1", "/pricing"),
		track(t, 24*time.Hour, "u2", "Product Viewed", map[string]any{"product_id": "p9", "name": "Leica M6", "price": 800}),
		track(t, 48*time.Hour, "u2", "Product Viewed", map[string]any{"product_id": "p9", "name": "Leica M6", "price": 800}),
	}); err != nil {
		t.Fatal(err)
	}
	if err := sim.Advance(ctx, t0.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	running()
	got := map[string]int{}
	for _, r := range kafkatest.ReadAll(t, seeds, schema.TopicCommands) {
		c, err := schema.UnmarshalCommand(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		got[c.UserID+" "+c.Template]++
	}
	if want := map[string]int{"u1 pricing-help": 1, "u2 expert-qa": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("commands %v, want %v", got, want)
	}
	if !strings.Contains(logs.String(), "partitions lost with the group session") && !strings.Contains(logs.String(), "kafka unreachable") {
		t.Errorf("the outage left no log line:\n%s", logs.String())
	}
}

// TestReadiness: an instance is unready until its first assignment, then
// ready once what it was given is restored, even when that is nothing (more
// instances than partitions).
func TestReadiness(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 1)
	clock := processor.NewManualClock(t0)
	p, err := processor.New(testConfig(t, seeds, clock, t.TempDir(), "ready-a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Readiness(); err == nil || !strings.Contains(err.Error(), "no partition assignment") {
		t.Fatalf("readiness before Run: %v", err)
	}
	a := start(t, testConfig(t, seeds, clock, t.TempDir(), "ready-a"))
	b := start(t, testConfig(t, seeds, clock, t.TempDir(), "ready-b"))
	kafkatest.Eventually(t, time.Minute, "both ready, one of them owning the one partition", func() bool {
		return a.p.Ready() && b.p.Ready() && len(owned(a.p))+len(owned(b.p)) == 1
	})
}

// TestRestoreIsRetried: an assigned partition's store cannot catch up at
// first (the broker refuses to list the changelog's offsets, as a broker
// going away mid-rebalance does); the processor retries until it can, is
// unready until then, and processes what arrived meanwhile.
func TestRestoreIsRetried(t *testing.T) {
	cluster, seeds := kafkatest.Cluster(t, 2)
	var refused atomic.Int32
	cluster.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		r := req.(*kmsg.ListOffsetsRequest)
		if len(r.Topics) != 1 || r.Topics[0].Topic != schema.TopicChangelog || refused.Load() >= 3 {
			return nil, nil, false
		}
		refused.Add(1)
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
	clock := processor.NewManualClock(t0.Add(-time.Hour))
	var logs logBuffer
	cfg := testConfig(t, seeds, clock, t.TempDir(), "restore-retry")
	cfg.Logger = logs.logger()
	in := start(t, cfg)
	kafkatest.Eventually(t, time.Minute, "the restore refused", func() bool { return refused.Load() >= 1 })
	if in.p.Ready() {
		t.Error("ready with a partition not restored")
	}
	producer := kafkatest.Client(t, seeds...)
	sim := &processor.Simulation{Processors: []*processor.Processor{in.p}, Clock: clock, Producer: producer, Topic: schema.TopicEvents}
	if err := sim.Play(context.Background(), identities(t, 0, 20, 0)); err != nil {
		t.Fatal(err)
	}
	kafkatest.Eventually(t, time.Minute, "ready", in.p.Ready)
	if refused.Load() < 3 || !strings.Contains(logs.String(), "restore partition failed; retrying") {
		t.Errorf("%d refusals; logs:\n%s", refused.Load(), logs.String())
	}
}
