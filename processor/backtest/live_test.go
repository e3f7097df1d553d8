package backtest_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/internal/clickstream"
	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/processor/backtest"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/schema"
)

// TestLiveEqualsBacktest plays a generated clickstream through the live
// processor on an embedded broker, with a simulated clock, and through the
// backtest: the send-commands must be the same bytes (DESIGN.md, "Time").
func TestLiveEqualsBacktest(t *testing.T) {
	pack, err := rules.Load(os.DirFS("../../testdata/rules"), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	evs := clickstream.Generate(clickstream.Config{Seed: 7, Users: 300, Start: t0, Span: 24 * time.Hour})
	last := evs[len(evs)-1].Time
	end := last.Add(48 * time.Hour) // the live clock's last position

	// Live.
	_, seeds := kafkatest.Cluster(t, 4)
	clock := processor.NewManualClock(evs[0].Time.Add(-time.Hour))
	p, err := processor.New(processor.Config{
		Kafka: seeds, Pack: pack, StateDir: t.TempDir(), Clock: clock,
		TickInterval: 10 * time.Millisecond, TransactionalID: "backtest-live-test",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("processor: %v", err)
		}
	}()
	recs := make([]processor.TimedRecord, len(evs))
	for i, e := range evs {
		recs[i] = processor.TimedRecord{Time: e.Time, Key: e.Key, Value: e.Value}
	}
	sim := &processor.Simulation{Processors: []*processor.Processor{p}, Clock: clock,
		Producer: kafkatest.Client(t, seeds...), Topic: schema.TopicEvents}
	if err := sim.Play(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := sim.Advance(ctx, end); err != nil {
		t.Fatal(err)
	}
	var live [][]byte
	for _, r := range kafkatest.ReadAll(t, seeds, schema.TopicCommands) {
		live = append(live, r.Value)
	}

	// Backtest of the same events, in the same order. The live watermark
	// stopped at end − grace: so does the range.
	dir := t.TempDir()
	in := filepath.Join(dir, "events.jsonl")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeJSONL(f, evs); err != nil {
		t.Fatal(err)
	}
	f.Close()
	res, err := backtest.Run(context.Background(), backtest.Config{
		Pack: pack, File: in, OutDir: filepath.Join(dir, "out"), InMemory: true,
		To: end.Add(-p.Grace()),
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "out", backtest.CommandsFile))
	if err != nil {
		t.Fatal(err)
	}
	replay := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))

	slices.SortFunc(live, bytes.Compare)
	slices.SortFunc(replay, bytes.Compare)
	if len(live) != len(replay) {
		t.Errorf("live sent %d commands, the backtest %d", len(live), len(replay))
	}
	for i := 0; i < min(len(live), len(replay)); i++ {
		if !bytes.Equal(live[i], replay[i]) {
			t.Fatalf("first difference at %d:\nlive:     %s\nbacktest: %s", i, live[i], replay[i])
		}
	}
	// The stream must exercise the pack, or the test proves little.
	fired := 0
	for _, tr := range res.Report.Run.Triggers {
		if tr.Sends > 0 {
			fired++
		}
	}
	if fired < 8 || len(replay) < 100 {
		t.Errorf("only %d commands from %d triggers: the generated stream should wake more of the pack", len(replay), fired)
	}
	t.Logf("%d events, %d commands from %d triggers, %d suppressions", len(evs), len(replay), fired, res.Report.Run.Totals.SuppressedTotal)
}
