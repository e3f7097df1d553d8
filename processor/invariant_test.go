package processor_test

import (
	"bytes"
	"context"
	"sort"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/internal/clickstream"
	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/task/tasktest"
	"github.com/microtrigger/microtrigger/schema"
)

// replay runs events through one task on an in-memory store with the
// event-time clock, as the replay driver does, and returns the encoded
// send-commands, sorted.
func replay(t testing.TB, pack *rules.Pack, events []clickstream.Event, end time.Time) [][]byte {
	t.Helper()
	tk := tasktest.New(t, tasktest.Config{Pack: pack})
	var out [][]byte
	flush := func() {
		o := tk.Flush()
		for i := range o.Commands {
			v, _ := schema.MarshalCommand(&o.Commands[i])
			out = append(out, v)
		}
	}
	for i, e := range events {
		tk.Offer(tasktest.Input(t, e.Value, int64(i)))
		if i%5000 == 0 {
			flush()
		}
	}
	if err := tk.Advance(end); err != nil {
		t.Fatal(err)
	}
	flush()
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i], out[j]) < 0 })
	return out
}

// TestLiveEqualsReplay is the central invariant: for in-order input, the
// live driver (on the broker, its clock moved in step with the events) and
// the replay driver produce byte-identical send-commands. The clickstream
// has 10,000 users following every behaviour of SCENARIOS.md.
func TestLiveEqualsReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 users")
	}
	events := clickstream.Generate(clickstream.Config{Users: 10_000, EventsPerUser: 8, Seed: 7})
	pack := loadPack(t)
	end := events[len(events)-1].Time.Add(40 * 24 * time.Hour)

	want := replay(t, pack, events, end)

	_, seeds := kafkatest.Cluster(t, 6)
	clock := processor.NewManualClock(events[0].Time.Add(-time.Hour))
	cfg := testConfig(t, seeds, clock, t.TempDir(), "invariant-test")
	cfg.Pack = pack
	in := start(t, cfg)
	recs := make([]processor.TimedRecord, len(events))
	for i, e := range events {
		recs[i] = processor.TimedRecord{Time: e.Time, Key: e.Key, Value: e.Value}
	}
	sim := &processor.Simulation{Processors: []*processor.Processor{in.p}, Clock: clock, Producer: kafkatest.Client(t, seeds...), Topic: schema.TopicEvents, Chunk: 5000}
	ctx := context.Background()
	if err := sim.Play(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := sim.Advance(ctx, end.Add(in.p.Grace())); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for _, r := range kafkatest.ReadAll(t, seeds, schema.TopicCommands) {
		got = append(got, r.Value)
	}
	sort.Slice(got, func(i, j int) bool { return bytes.Compare(got[i], got[j]) < 0 })

	triggers := map[string]int{}
	for _, v := range want {
		c, _ := schema.UnmarshalCommand(v)
		triggers[c.Trigger]++
	}
	t.Logf("%d events, %d commands, by trigger %v", len(events), len(want), triggers)
	if len(triggers) < len(pack.Triggers) {
		t.Errorf("the clickstream fired %d of the pack's %d triggers", len(triggers), len(pack.Triggers))
	}
	if len(got) != len(want) {
		t.Fatalf("live emitted %d commands, replay %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("first difference at %d:\nlive:   %s\nreplay: %s", i, got[i], want[i])
		}
	}
}
