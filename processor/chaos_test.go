package processor_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/broker"
	"github.com/microtrigger/microtrigger/internal/clickstream"
	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/internal/tooltest"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/schema"
)

// TestExactlyOnceThroughChaos plays a clickstream of thousands of users
// through two processor instances and, mid-stream, kills one without
// closing its client (its network is cut: no LeaveGroup, its transaction
// left open), restarts it on an empty volume, adds a third instance and
// removes another. Every send-command the replay driver expects then
// appears exactly once in send-commands read with read_committed, nothing
// else does, and kcat (librdkafka, read_committed) sees the same.
//
// CHAOS_ALO=1 runs the same instances without transactions: the test then
// finds doubled commands, which shows it can tell the difference.
func TestExactlyOnceThroughChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("rebalances and a session timeout")
	}
	events := clickstream.Generate(clickstream.Config{Users: 3000, EventsPerUser: 8, Seed: 11})
	pack := loadPack(t)
	end := events[len(events)-1].Time.Add(40 * 24 * time.Hour)
	want := replay(t, pack, events, end)

	cluster, seeds := kafkatest.Cluster(t, 6)
	clock := processor.NewManualClock(events[0].Time.Add(-time.Hour))
	group := append(append([]kgo.Opt(nil), seeds...),
		kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(300*time.Millisecond), kgo.RebalanceTimeout(10*time.Second))
	cfg := func(txnID string, extra ...kgo.Opt) processor.Config {
		c := testConfig(t, append(append([]kgo.Opt(nil), group...), extra...), clock, t.TempDir(), txnID)
		c.Pack = pack
		c.DisableExactlyOnce = os.Getenv("CHAOS_ALO") != ""
		return c
	}
	// Once armed, A's network is cut after it has written send-commands
	// but before it writes the changelog records of the same batch: the
	// worst moment, with output written and neither state nor offsets.
	var netA kafkatest.Network
	kill := &killOnWrite{net: &netA, written: make(chan struct{}), killed: make(chan struct{})}
	// A snapshots its state with every batch that changes it, so that the
	// kill lands between a batch's commands and its changelog records; B
	// and the others snapshot rarely, so that their successors replay the
	// input since.
	cfgA := cfg("chaos-a", netA.Opt(), kgo.WithHooks(kill))
	cfgA.SnapshotUsers = 1
	a := start(t, cfgA)
	b := start(t, cfg("chaos-b"))
	producer := kafkatest.Client(t, seeds...)
	sim := &processor.Simulation{Processors: []*processor.Processor{a.p, b.p}, Clock: clock, Producer: producer, Topic: schema.TopicEvents, Chunk: 2000}
	ctx := context.Background()
	recs := make([]processor.TimedRecord, len(events))
	for i, e := range events {
		recs[i] = processor.TimedRecord{Time: e.Time, Key: e.Key, Value: e.Value}
	}
	n := len(recs)
	part := func(i, j int) []processor.TimedRecord { return recs[i*n/8 : j*n/8] }

	if err := sim.Play(ctx, part(0, 2)); err != nil {
		t.Fatal(err)
	}

	// Produce the next events; as event time passes, timers fire: kill A
	// in the middle of the first batch that sends commands.
	var batch []*kgo.Record
	for _, r := range part(2, 3) {
		batch = append(batch, &kgo.Record{Topic: schema.TopicEvents, Key: r.Key, Value: r.Value, Timestamp: r.Time})
	}
	kill.armed.Store(true)
	if err := producer.ProduceSync(ctx, batch...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-kill.killed:
	case <-time.After(time.Minute):
		t.Fatal("A sent no command as the events came in: nothing to kill it in the middle of")
	}
	a.cancel()
	<-a.done
	a.done <- nil
	t.Log("killed A in the middle of a transaction")
	sim.Processors = []*processor.Processor{b.p}
	if err := sim.AwaitConsumed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sim.Advance(ctx, part(2, 3)[len(part(2, 3))-1].Time); err != nil {
		t.Fatal(err)
	}

	// A again, on an empty volume, with its transactional id: it fences
	// the transaction the killed instance left open.
	a2 := start(t, cfg("chaos-a"))
	sim.Processors = []*processor.Processor{a2.p, b.p}
	if err := sim.Play(ctx, part(3, 5)); err != nil {
		t.Fatal(err)
	}
	t.Log("restarted A on an empty volume")

	c := start(t, cfg("chaos-c"))
	sim.Processors = []*processor.Processor{a2.p, b.p, c.p}
	if err := sim.Play(ctx, part(5, 6)); err != nil {
		t.Fatal(err)
	}
	t.Log("added C")

	b.stop(t)
	sim.Processors = []*processor.Processor{a2.p, c.p}
	if err := sim.Play(ctx, part(6, 8)); err != nil {
		t.Fatal(err)
	}
	t.Log("removed B")
	if err := sim.Advance(ctx, end.Add(a2.p.Grace())); err != nil {
		t.Fatal(err)
	}

	got := commandIDs(t, kafkatest.ReadAll(t, seeds, schema.TopicCommands))
	wantIDs := map[string]int{}
	for _, v := range want {
		cmd, _ := schema.UnmarshalCommand(v)
		wantIDs[cmd.ID]++
	}
	t.Logf("%d events, %d commands expected", n, len(want))
	compareIDs(t, "kgo read_committed", got, wantIDs)

	if kcat := tooltest.Need(t, "kcat", "apt-get install kcat"); kcat != "" {
		out, err := exec.Command(kcat, "-b", broker.Addr(cluster), "-C", "-t", schema.TopicCommands, "-o", "beginning", "-e", "-q",
			"-X", "isolation.level=read_committed", "-f", "%s\n").Output()
		if err != nil {
			t.Fatalf("kcat: %v", err)
		}
		fromKcat := map[string]int{}
		for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
			cmd, err := schema.UnmarshalCommand(line)
			if err != nil {
				t.Fatalf("kcat read %q: %v", line, err)
			}
			fromKcat[cmd.ID]++
		}
		compareIDs(t, "kcat read_committed", fromKcat, wantIDs)
	}
}

// killOnWrite cuts a network, once armed, when the client buffers its
// first changelog record after it has written a batch of send-commands.
type killOnWrite struct {
	net             *kafkatest.Network
	armed           atomic.Bool
	commands        atomic.Bool // a command was buffered since arming
	writtenOnce     sync.Once
	written, killed chan struct{}
	killOnce        sync.Once
}

// OnProduceBatchWritten runs on the client's goroutines.
func (k *killOnWrite) OnProduceBatchWritten(_ kgo.BrokerMetadata, topic string, _ int32, _ kgo.ProduceBatchMetrics) {
	if topic == schema.TopicCommands && k.armed.Load() {
		k.writtenOnce.Do(func() { close(k.written) })
	}
}

// OnProduceRecordBuffered runs in the producing goroutine, the processor's
// batch: blocking it here holds the changelog back until the commands are
// out, then the network goes.
func (k *killOnWrite) OnProduceRecordBuffered(r *kgo.Record) {
	if !k.armed.Load() {
		return
	}
	if r.Topic == schema.TopicCommands {
		k.commands.Store(true)
		return
	}
	if r.Topic != schema.TopicChangelog || !k.commands.Load() {
		return
	}
	select {
	case <-k.written:
	case <-k.killed:
		return
	}
	k.killOnce.Do(func() {
		k.net.Kill()
		close(k.killed)
	})
}

func commandIDs(t *testing.T, recs []*kgo.Record) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, r := range recs {
		cmd, err := schema.UnmarshalCommand(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		ids[cmd.ID]++
	}
	return ids
}

func compareIDs(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	var dup, missing, extra []string
	for id, n := range got {
		if n > 1 {
			dup = append(dup, id)
		}
		if want[id] == 0 {
			extra = append(extra, id)
		}
	}
	for id := range want {
		if got[id] == 0 {
			missing = append(missing, id)
		}
	}
	sort.Strings(dup)
	if len(dup)+len(missing)+len(extra) > 0 {
		t.Errorf("%s: %d commands, %d expected: %d doubled, %d missing, %d unexpected (first doubled %v)",
			what, len(got), len(want), len(dup), len(missing), len(extra), dup[:min(3, len(dup))])
	}
}
