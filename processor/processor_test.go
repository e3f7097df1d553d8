package processor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/store"
	"github.com/microtrigger/microtrigger/schema"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func loadPack(t testing.TB) *rules.Pack {
	t.Helper()
	p, err := rules.Load(os.DirFS("../testdata/rules"), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ev builds an event record at offset d from t0.
func ev(t testing.TB, d time.Duration, user string, fields map[string]any) processor.TimedRecord {
	t.Helper()
	m := map[string]any{"userId": user, "timestamp": schema.FormatTime(t0.Add(d))}
	for k, v := range fields {
		m[k] = v
	}
	if _, ok := m["messageId"]; !ok {
		m["messageId"] = user + "-" + d.String() + "-" + m["type"].(string)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return processor.TimedRecord{Time: t0.Add(d), Key: []byte(user), Value: b}
}

func identify(t testing.TB, user, email string) processor.TimedRecord {
	return ev(t, -time.Minute, user, map[string]any{"type": "identify",
		"traits": map[string]any{"email": email, "email_opt_in": true, "timezone": "UTC"}})
}

func page(t testing.TB, d time.Duration, user, path string) processor.TimedRecord {
	return ev(t, d, user, map[string]any{"type": "page", "context": map[string]any{"page": map[string]any{"path": path}}})
}

func track(t testing.TB, d time.Duration, user, name string, props map[string]any) processor.TimedRecord {
	return ev(t, d, user, map[string]any{"type": "track", "event": name, "properties": props})
}

// instance is one running processor.
type instance struct {
	p      *processor.Processor
	cancel context.CancelFunc
	done   chan error
}

func start(t testing.TB, cfg processor.Config) *instance {
	t.Helper()
	p, err := processor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := p.Run(ctx)
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "processor stopped: %v\n", err)
			t.Errorf("processor stopped: %v", err)
		}
		in.done <- err
	}()
	t.Cleanup(func() { in.stop(t) })
	return in
}

func (in *instance) stop(t testing.TB) {
	in.cancel()
	if err := <-in.done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("processor: %v", err)
	}
	in.done <- nil // make stop idempotent
}

func TestEndToEnd(t *testing.T) {
	cluster, seeds := kafkatest.Cluster(t, 4)
	_ = cluster
	clock := processor.NewManualClock(t0.Add(-time.Hour))
	cfg := processor.Config{
		Kafka:           seeds,
		Pack:            loadPack(t),
		StateDir:        t.TempDir(),
		Clock:           clock,
		TickInterval:    10 * time.Millisecond,
		TransactionalID: "test-processor-1",
	}
	in := start(t, cfg)
	producer := kafkatest.Client(t, seeds...)
	sim := &processor.Simulation{Processors: []*processor.Processor{in.p}, Clock: clock, Producer: producer, Topic: schema.TopicEvents}

	malformed := processor.TimedRecord{Time: t0.Add(time.Minute), Key: []byte("u1"), Value: []byte(`{"type":"track","userId":"u1","event":"Product Added","timestamp":"yesterday"}`)}
	recs := []processor.TimedRecord{
		identify(t, "u1", "ada@example.com"),
		identify(t, "u2", "bob@example.com"),
		page(t, 0, "u1", "/pricing"),
		malformed,
		page(t, 3*time.Minute, "u1", "/pricing"),
		track(t, 0, "u2", "Product Viewed", map[string]any{"product_id": "p9", "name": "Leica M6", "price": 800}),
		track(t, 24*time.Hour, "u2", "Product Viewed", map[string]any{"product_id": "p9", "name": "Leica M6", "price": 800}),
		track(t, 48*time.Hour, "u2", "Product Viewed", map[string]any{"product_id": "p9", "name": "Leica M6", "price": 800}),
	}
	ctx := context.Background()
	if err := sim.Play(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := sim.Advance(ctx, t0.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	cmds := kafkatest.ReadAll(t, seeds, schema.TopicCommands)
	got := map[string]schema.SendCommand{}
	for _, r := range cmds {
		c, err := schema.UnmarshalCommand(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != c.UserID {
			t.Errorf("command keyed %q, user %q", r.Key, c.UserID)
		}
		got[c.Template] = c
	}
	if len(cmds) != 2 {
		t.Fatalf("got %d commands, want 2: %v", len(cmds), got)
	}
	if c := got["pricing-help"]; c.UserID != "u1" || !c.SendAt.Equal(t0.Add(13*time.Minute)) || c.Email != "ada@example.com" {
		t.Errorf("pricing-help: %+v", c)
	}
	if c := got["expert-qa"]; c.UserID != "u2" || c.Data["product_name"] != "Leica M6" || c.Data["price"] != 800.0 {
		t.Errorf("expert-qa: %+v", c)
	}
	dlq := kafkatest.ReadAll(t, seeds, schema.TopicEventsDLQ)
	if len(dlq) != 1 {
		t.Fatalf("got %d dead letters, want 1", len(dlq))
	}
	var hs []schema.Header
	for _, h := range dlq[0].Headers {
		hs = append(hs, schema.Header{Key: h.Key, Value: h.Value})
	}
	d := schema.ParseDeadLetter(dlq[0].Key, dlq[0].Value, hs)
	if d.Reason != schema.ReasonBadTime || string(d.Value) != string(malformed.Value) || d.Topic != schema.TopicEvents {
		t.Errorf("dead letter: %+v", d)
	}
	_ = kgo.Record{}
}

// testConfig is a processor on the test broker with a manual clock.
// MICROTRIGGER_TEST_DEBUG=1 logs the processor and its Kafka client to
// stderr.
func testConfig(t testing.TB, seeds []kgo.Opt, clock processor.Clock, dir, txnID string) processor.Config {
	if os.Getenv("MICROTRIGGER_TEST_DEBUG") != "" {
		prefix := txnID + " "
		seeds = append(append([]kgo.Opt(nil), seeds...), kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, func() string { return prefix })))
		return processor.Config{
			Kafka: seeds, Pack: loadPack(t), StateDir: dir, Clock: clock, TickInterval: 10 * time.Millisecond, TransactionalID: txnID,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("instance", txnID),
		}
	}
	return processor.Config{
		Kafka:           seeds,
		Pack:            loadPack(t),
		StateDir:        dir,
		Clock:           clock,
		TickInterval:    10 * time.Millisecond,
		TransactionalID: txnID,
	}
}

// commandsFor reads send-commands and returns those of one user.
func commandsFor(t *testing.T, seeds []kgo.Opt, user string) []schema.SendCommand {
	t.Helper()
	var out []schema.SendCommand
	for _, r := range kafkatest.ReadAll(t, seeds, schema.TopicCommands) {
		c, err := schema.UnmarshalCommand(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if c.UserID == user {
			out = append(out, c)
		}
	}
	return out
}

// TestStateSurvivesRestart stops the processor between two page views of
// one user: the revisit is only detected if the first view survived, both
// on the same Pebble directory and on an empty one restored from the
// changelog.
func TestStateSurvivesRestart(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 4)
	clock := processor.NewManualClock(t0.Add(-time.Hour))
	dir := t.TempDir()
	producer := kafkatest.Client(t, seeds...)
	ctx := context.Background()
	play := func(in *instance, recs ...processor.TimedRecord) {
		t.Helper()
		begin := time.Now()
		defer func() { t.Logf("play took %v", time.Since(begin)) }()
		sim := &processor.Simulation{Processors: []*processor.Processor{in.p}, Clock: clock, Producer: producer, Topic: schema.TopicEvents}
		if err := sim.Play(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if err := sim.Advance(ctx, clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}

	a := start(t, testConfig(t, seeds, clock, dir, "restart-test"))
	play(a, identify(t, "u1", "ada@example.com"), identify(t, "u3", "cy@example.com"),
		page(t, 0, "u1", "/pricing"), page(t, time.Minute, "u3", "/pricing"))
	a.stop(t)
	if got := commandsFor(t, seeds, "u1"); len(got) != 0 {
		t.Fatalf("one view sent %d commands", len(got))
	}

	// Same directory: the store already holds the first view.
	b := start(t, testConfig(t, seeds, clock, dir, "restart-test"))
	play(b, page(t, 2*time.Hour, "u1", "/pricing"))
	b.stop(t)
	if got := commandsFor(t, seeds, "u1"); len(got) != 1 || got[0].Template != "pricing-help" {
		t.Fatalf("after restart on the same directory: %+v", got)
	}

	// An empty directory: the state comes back from the changelog.
	c := start(t, testConfig(t, seeds, clock, t.TempDir(), "restart-test"))
	play(c, page(t, 4*time.Hour, "u3", "/pricing"))
	c.stop(t)
	if got := commandsFor(t, seeds, "u3"); len(got) != 1 || got[0].Template != "pricing-help" {
		t.Fatalf("after restore from the changelog: %+v", got)
	}
}

// TestMisroutedRecordsAreRerouted produces a user's event to a partition
// kgo's murmur2 would not choose (as librdkafka's default CRC32 partitioner
// does): the processor moves it to the user's partition, so per-user state
// stays whole.
func TestMisroutedRecordsAreRerouted(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 4)
	clock := processor.NewManualClock(t0.Add(-time.Hour))
	in := start(t, testConfig(t, seeds, clock, t.TempDir(), "reroute-test"))
	ctx := context.Background()
	sim := &processor.Simulation{Processors: []*processor.Processor{in.p}, Clock: clock, Producer: kafkatest.Client(t, seeds...), Topic: schema.TopicEvents}
	if err := sim.Play(ctx, []processor.TimedRecord{identify(t, "u1", "ada@example.com"), page(t, 0, "u1", "/pricing")}); err != nil {
		t.Fatal(err)
	}
	right := kgo.StickyKeyPartitioner(nil).ForTopic(schema.TopicEvents).Partition(&kgo.Record{Key: []byte("u1")}, 4)
	wrong := int32((right + 1) % 4)
	manual := kafkatest.Client(t, append(seeds, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	second := page(t, 3*time.Minute, "u1", "/pricing")
	kafkatest.Produce(t, manual, &kgo.Record{Topic: schema.TopicEvents, Partition: wrong, Key: nil, Value: second.Value})
	if err := sim.AwaitConsumed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sim.Advance(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := commandsFor(t, seeds, "u1"); len(got) != 1 {
		t.Fatalf("revisit across partitions sent %d commands, want 1", len(got))
	}
	moved := 0
	for _, r := range kafkatest.ReadAll(t, seeds, schema.TopicEvents) {
		for _, h := range r.Headers {
			if h.Key == "microtrigger.rerouted-from" {
				moved++
				if r.Partition != int32(right) || string(r.Key) != "u1" {
					t.Errorf("re-routed copy on partition %d key %q, want %d u1", r.Partition, r.Key, right)
				}
			}
		}
	}
	if moved != 1 {
		t.Fatalf("%d re-routed copies, want 1", moved)
	}
}

// TestStaleStoreIsRebuilt leaves a partition store untouched for longer
// than StaleStoreAfter: on the next assignment it is discarded and rebuilt
// from the changelog, so whatever it held that the changelog no longer
// says (here, a key planted while the processor was down) is gone.
func TestStaleStoreIsRebuilt(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 1)
	clock := processor.NewManualClock(t0.Add(-time.Hour))
	dir := t.TempDir()
	ctx := context.Background()
	producer := kafkatest.Client(t, seeds...)
	in := start(t, testConfig(t, seeds, clock, dir, "stale-test"))
	sim := &processor.Simulation{Processors: []*processor.Processor{in.p}, Clock: clock, Producer: producer, Topic: schema.TopicEvents}
	if err := sim.Play(ctx, []processor.TimedRecord{identify(t, "u1", "ada@example.com"), page(t, 0, "u1", "/pricing")}); err != nil {
		t.Fatal(err)
	}
	in.stop(t)

	planted := []byte("u-planted-while-down")
	db, err := store.Open(filepath.Join(dir, "p-0"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	b.Put(planted, []byte("stale"))
	if err := db.Apply(b); err != nil {
		t.Fatal(err)
	}
	db.Close()

	check := func(wantPlanted bool) {
		t.Helper()
		in := start(t, testConfig(t, seeds, clock, dir, "stale-test"))
		sim.Processors = []*processor.Processor{in.p}
		if err := sim.Play(ctx, []processor.TimedRecord{page(t, clock.Now().Sub(t0), "u2", "/blog")}); err != nil {
			t.Fatal(err)
		}
		in.stop(t)
		db, err := store.Open(filepath.Join(dir, "p-0"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		v, _ := db.Get(planted)
		if (v != nil) != wantPlanted {
			t.Fatalf("planted key present: %v, want %v", v != nil, wantPlanted)
		}
	}
	check(true) // an hour later: the store is reused as it is
	clock.Set(clock.Now().Add(13 * time.Hour))
	check(false) // 13 hours later: rebuilt from the changelog
}
