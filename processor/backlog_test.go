package processor_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/microtrigger/microtrigger/internal/clickstream"
	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/processor/backtest"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/schema"
)

// TestBacklogEqualsBacktest publishes a generated clickstream of 10,000
// users (months old: every timer it sets is due by now) and only then
// starts the processor, on the real wall clock. Part way through the
// backlog the instance is killed (its network cut, its transaction left
// open) and restarted on its volume; later a second instance joins and
// takes partitions that are still catching up. Once every partition has
// caught up, the send-commands on the topic are byte for byte those of
// `microtrigger backtest` over the same topic with --to at that moment,
// and no event was counted late.
func TestBacklogEqualsBacktest(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 users, a kill and a rebalance")
	}
	events := clickstream.Generate(clickstream.Config{Users: 10_000, EventsPerUser: 8, Seed: 13})
	_, seeds := kafkatest.Cluster(t, 6)
	producer := kafkatest.Client(t, seeds...)
	ctx := context.Background()
	recs := make([]*kgo.Record, len(events))
	for i, e := range events {
		// No record timestamp: the broker's clock at publication, the
		// arrival that bounds the event time.
		recs[i] = &kgo.Record{Topic: schema.TopicEvents, Key: e.Key, Value: e.Value}
	}
	kafkatest.Produce(t, producer, recs...)
	total := endOffsets(t, producer)

	reader := sdkmetric.NewManualReader()
	meter := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	group := append(append([]kgo.Opt(nil), seeds...),
		kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(300*time.Millisecond), kgo.RebalanceTimeout(10*time.Second))
	cfg := func(txnID, dir string, extra ...kgo.Opt) processor.Config {
		c := testConfig(t, append(append([]kgo.Opt(nil), group...), extra...), nil, dir, txnID)
		c.MaxPollRecords = 500 // many batches: the kill lands inside the backlog
		c.Meter = meter
		return c
	}
	dirA := t.TempDir()
	var netA kafkatest.Network
	a := start(t, cfg("backlog-a", dirA, netA.Opt()))
	watch := []*processor.Processor{a.p}
	if at := awaitCommitted(t, watch, total/4); at >= total {
		t.Fatalf("the whole backlog was done before the kill (%d of %d records)", at, total)
	} else {
		t.Logf("killing A with %d of %d records committed", at, total)
	}
	netA.Kill()
	a.cancel()
	<-a.done
	a.done <- nil

	a2 := start(t, cfg("backlog-a", dirA))
	watch = []*processor.Processor{a2.p}
	t.Logf("A restarted on its volume; %d records committed before B joins", awaitCommitted(t, watch, total/2))
	b := start(t, cfg("backlog-b", t.TempDir()))
	watch = append(watch, b.p)

	awaitCaughtUp(t, watch, total)
	caughtUp := time.Now()

	var live [][]byte
	for _, r := range kafkatest.ReadAll(t, seeds, schema.TopicCommands) {
		live = append(live, r.Value)
	}
	out := t.TempDir()
	if _, err := backtest.Run(ctx, backtest.Config{Pack: loadPack(t), Topic: schema.TopicEvents, Kafka: seeds, To: caughtUp, OutDir: out, InMemory: true}); err != nil {
		t.Fatal(err)
	}
	want := readLines(t, filepath.Join(out, backtest.CommandsFile))
	sort.Slice(live, func(i, j int) bool { return bytes.Compare(live[i], live[j]) < 0 })
	sort.Slice(want, func(i, j int) bool { return bytes.Compare(want[i], want[j]) < 0 })
	t.Logf("%d events, %d commands from the backtest, %d from the processor", len(events), len(want), len(live))
	if len(want) < 1000 {
		t.Fatalf("only %d commands: the clickstream proves little", len(want))
	}
	if len(live) != len(want) {
		t.Fatalf("processor emitted %d commands, backtest %d", len(live), len(want))
	}
	for i := range want {
		if !bytes.Equal(live[i], want[i]) {
			t.Fatalf("first difference at %d:\nprocessor: %s\nbacktest:  %s", i, live[i], want[i])
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if n := counter(rm, "microtrigger_processor_late_events_total", "", ""); n != 0 {
		t.Errorf("%d events counted late in a backlog read in order", n)
	}
	if n := counter(rm, "microtrigger_processor_events_total", "outcome", "applied"); n == 0 {
		t.Error("no event counted as applied: the metrics prove nothing")
	}
	up := gauges(rm, "microtrigger_processor_caught_up")
	if len(up) != 6 {
		t.Errorf("caught_up reported for %d partitions, want 6: %v", len(up), up)
	}
	for part, v := range up {
		if v != 1 {
			t.Errorf("partition %d: caught_up %v after catching up", part, v)
		}
	}
	for part, lag := range gauges(rm, "microtrigger_processor_event_time_lag_seconds") {
		if lag > time.Since(caughtUp).Seconds()+60 {
			t.Errorf("partition %d: event-time lag %.0fs once caught up", part, lag)
		}
	}
}

// TestBacklogDoesNotOutrunItsEvents is the cart that was bought: added to
// the cart at T, bought at T+30m, and the processor starts at T+3h on a
// backlog of 20,000 records. Event time reaches the cart's reminder (T+1h)
// only after the order has been applied, so nothing is sent; another
// user's cart, never bought, gets its reminder.
func TestBacklogDoesNotOutrunItsEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 records")
	}
	T := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Second)
	noise := clickstream.Generate(clickstream.Config{Users: 2800, EventsPerUser: 8, Seed: 5, Start: T.Add(-24 * time.Hour), Span: 24 * time.Hour})
	_, seeds := kafkatest.Cluster(t, 2)
	producer := kafkatest.Client(t, seeds...)
	at := func(d time.Duration) time.Time { return T.Add(d) }
	rec := func(r processor.TimedRecord) *kgo.Record {
		return &kgo.Record{Topic: schema.TopicEvents, Key: r.Key, Value: r.Value}
	}
	shift := func(r processor.TimedRecord, d time.Duration) processor.TimedRecord {
		var m map[string]any
		json.Unmarshal(r.Value, &m)
		m["timestamp"] = schema.FormatTime(at(d))
		m["messageId"] = m["messageId"].(string) + "-" + d.String() + "-" + m["type"].(string) + "-" + m["event"].(string)
		r.Value, _ = json.Marshal(m)
		return r
	}
	// The users live where T+1h is midday, whatever the time the test
	// runs at, so that quiet hours defer nothing (Etc/GMT-N is UTC+N).
	off := (12 - at(time.Hour).Hour() + 24) % 24
	if off > 14 {
		off -= 24
	}
	zone := fmt.Sprintf("Etc/GMT%+d", -off)
	if off == 0 {
		zone = "UTC"
	}
	var recs []*kgo.Record
	for _, who := range []string{"bought", "left"} {
		recs = append(recs,
			rec(shift(ev(t, -time.Minute, who, map[string]any{"type": "identify", "event": "",
				"traits": map[string]any{"email": who + "@example.com", "email_opt_in": true, "timezone": zone}}), -time.Minute)),
			rec(shift(track(t, 0, who, "Product Added", map[string]any{"product_id": "p1", "price": 45}), 0)))
	}
	for _, e := range noise[:len(noise)/2] {
		recs = append(recs, &kgo.Record{Topic: schema.TopicEvents, Key: e.Key, Value: e.Value})
	}
	recs = append(recs, rec(shift(track(t, 0, "bought", "Order Completed", map[string]any{"order_id": "o1", "total": 45}), 30*time.Minute)))
	for _, e := range noise[len(noise)/2:] {
		recs = append(recs, &kgo.Record{Topic: schema.TopicEvents, Key: e.Key, Value: e.Value})
	}
	kafkatest.Produce(t, producer, recs...)
	total := endOffsets(t, producer)
	if total < 20_000 {
		t.Fatalf("a backlog of %d records, want at least 20,000", total)
	}

	cfg := testConfig(t, seeds, nil, t.TempDir(), "backlog-cart")
	cfg.MaxPollRecords = 500
	in := start(t, cfg)
	awaitCaughtUp(t, []*processor.Processor{in.p}, total)

	if got := commandsFor(t, seeds, "bought"); len(got) != 0 {
		t.Errorf("the user who bought at T+30m was sent %d emails, first %s", len(got), got[0].Template)
	}
	got := commandsFor(t, seeds, "left")
	if len(got) == 0 || got[0].Template != "cart-reminder" || !got[0].SendAt.Equal(at(time.Hour)) {
		t.Errorf("the cart left at T got %+v, want its reminder at T+1h", got)
	}
}

// TestIdlePartitionFiresTimers runs the processor on the wall clock: a form
// started now, with nothing after it on the partition, gets its email once
// the wall clock passes the trigger's wait.
func TestIdlePartitionFiresTimers(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 1)
	cfg := testConfig(t, seeds, nil, t.TempDir(), "idle")
	cfg.Pack = loadPackFrom(t, `
policy:
  grace: 0s
  consent: {required: false}
  quiet_hours: null
  frequency: {per_day: 0, per_week: 0}
triggers:
  - name: form-soon
    intent: high
    on: [Form Started]
    wait: 2s
    template: form-help
`)
	start(t, cfg)
	now := time.Now().UTC()
	producer := kafkatest.Client(t, seeds...)
	for _, r := range []processor.TimedRecord{
		ev(t, 0, "u1", map[string]any{"type": "identify", "traits": map[string]any{"email": "u1@example.com"}, "timestamp": schema.FormatTime(now)}),
		ev(t, 0, "u1", map[string]any{"type": "track", "event": "Form Started", "properties": map[string]any{"form": "trial"}, "timestamp": schema.FormatTime(now)}),
	} {
		kafkatest.Produce(t, producer, &kgo.Record{Topic: schema.TopicEvents, Key: r.Key, Value: r.Value})
	}
	got := kafkatest.Await(t, seeds, schema.TopicCommands, 1, time.Minute)
	c, err := schema.UnmarshalCommand(got[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := schema.FormatTime(c.SendAt), schema.FormatTime(now.Add(2*time.Second)); got != want {
		t.Errorf("send_at %s, want %s", got, want)
	}
}

// TestFutureEventMovesNoClock: an event stamped in 2099 by a device with a
// wrong clock is dead-lettered as future_timestamp, and the other users'
// pending timers on its partition stay pending.
func TestFutureEventMovesNoClock(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 1)
	in := start(t, testConfig(t, seeds, nil, t.TempDir(), "future"))
	now := time.Now().UTC()
	cart := []processor.TimedRecord{
		identify(t, "waiting", "waiting@example.com"),
		track(t, 0, "waiting", "Product Added", map[string]any{"product_id": "p1", "price": 45}),
		page(t, 0, "wrong-clock", "/pricing"),
	}
	for i := range cart {
		var m map[string]any
		json.Unmarshal(cart[i].Value, &m)
		m["timestamp"] = schema.FormatTime(now.Add(time.Duration(i-2) * time.Second))
		if i == 2 {
			m["timestamp"] = "2099-03-02T09:00:00Z"
		}
		cart[i].Value, _ = json.Marshal(m)
	}
	producer := kafkatest.Client(t, seeds...)
	for _, r := range cart {
		kafkatest.Produce(t, producer, &kgo.Record{Topic: schema.TopicEvents, Key: r.Key, Value: r.Value})
	}
	dl := kafkatest.Await(t, seeds, schema.TopicEventsDLQ, 1, time.Minute)
	if reason := header(dl[0], "dlq.reason"); reason != string(schema.ReasonFutureTime) {
		t.Fatalf("dead letter reason %q, want %s", reason, schema.ReasonFutureTime)
	}
	awaitCaughtUp(t, []*processor.Processor{in.p}, 3)
	// The wall clock then takes the watermark past the cart add.
	awaitProgress(t, []*processor.Processor{in.p}, func(prog map[int32]processor.Progress) bool {
		return prog[0].Buffered == 0 && prog[0].Watermark.After(now)
	})
	for _, pr := range in.p.Progress() {
		if pr.Timers != 1 || pr.Watermark.After(time.Now()) {
			t.Errorf("after the 2099 event: %d pending timers, watermark %s", pr.Timers, pr.Watermark)
		}
	}
	if got := commandsFor(t, seeds, "waiting"); len(got) != 0 {
		t.Errorf("the waiting cart's reminder was sent at once: %+v", got)
	}
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

// endOffsets sums the events topic's end offsets.
func endOffsets(t *testing.T, cl *kgo.Client) int64 {
	t.Helper()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), schema.TopicEvents)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// awaitCommitted waits until the processors have committed at least n
// input offsets in all, and returns how many.
func awaitCommitted(t *testing.T, ps []*processor.Processor, n int64) int64 {
	t.Helper()
	var got int64
	awaitProgress(t, ps, func(prog map[int32]processor.Progress) bool {
		got = 0
		for _, pr := range prog {
			got += pr.Committed
		}
		return got >= n
	})
	return got
}

// awaitCaughtUp waits until every partition is owned, caught up, and has
// committed its share of the total offsets.
func awaitCaughtUp(t *testing.T, ps []*processor.Processor, total int64) {
	t.Helper()
	awaitProgress(t, ps, func(prog map[int32]processor.Progress) bool {
		var sum int64
		for _, pr := range prog {
			if !pr.CaughtUp {
				return false
			}
			sum += pr.Committed
		}
		return sum >= total
	})
}

func awaitProgress(t *testing.T, ps []*processor.Processor, ok func(map[int32]processor.Progress) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for {
		merged := map[int32]processor.Progress{}
		var changed []<-chan struct{}
		for _, p := range ps {
			changed = append(changed, p.Changed())
			for k, v := range p.Progress() {
				merged[k] = v
			}
		}
		if ok(merged) {
			return
		}
		cases := make(chan struct{}, len(changed))
		for _, c := range changed {
			go func() {
				select {
				case <-c:
					cases <- struct{}{}
				case <-ctx.Done():
				}
			}()
		}
		select {
		case <-cases:
		case <-ctx.Done():
			t.Fatalf("timed out; progress %+v", merged)
		}
	}
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// counter sums a counter's series whose label key is value (key "": all).
func counter(rm metricdata.ResourceMetrics, name, key, value string) int64 {
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != name || !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				if v, ok := dp.Attributes.Value(attrKey(key)); key == "" || ok && v.AsString() == value {
					n += dp.Value
				}
			}
		}
	}
	return n
}

func gauges(rm metricdata.ResourceMetrics, name string) map[int64]float64 {
	out := map[int64]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			g, ok := m.Data.(metricdata.Gauge[float64])
			if m.Name != name || !ok {
				continue
			}
			for _, dp := range g.DataPoints {
				v, _ := dp.Attributes.Value(attrKey("partition"))
				out[v.AsInt64()] = dp.Value
			}
		}
	}
	return out
}

func loadPackFrom(t testing.TB, src string) *rules.Pack {
	t.Helper()
	p, err := rules.LoadSources([]string{"pack.yaml"}, map[string][]byte{"pack.yaml": []byte(src)}, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func attrKey(k string) attribute.Key { return attribute.Key(k) }
