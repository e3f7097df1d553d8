package ledger

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/schema"
)

func newLedger(t *testing.T, seeds []kgo.Opt, dir string) *Ledger {
	t.Helper()
	cl := kafkatest.Client(t, append([]kgo.Opt{kgo.RecordPartitioner(Partitioner(schema.TopicSinkChangelog))}, seeds...)...)
	l, err := New(Config{Dir: dir, Topic: schema.TopicSinkChangelog, Producer: cl, Kafka: seeds})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func want(t *testing.T, l *Ledger, part int32, id string, state State) {
	t.Helper()
	e, ok, err := l.Get(part, id)
	if err != nil {
		t.Fatal(err)
	}
	if state == 0 {
		if ok {
			t.Fatalf("%s in partition %d: %v, want no entry", id, part, e.State)
		}
		return
	}
	if !ok || e.State != state {
		t.Fatalf("%s in partition %d: %v (present %v), want %v", id, part, e.State, ok, state)
	}
}

func TestRecordRestoreMove(t *testing.T) {
	ctx := context.Background()
	_, seeds := kafkatest.Cluster(t, 3)
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	a := newLedger(t, seeds, t.TempDir())
	if err := a.Assign(ctx, []int32{0, 1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := a.Record(ctx,
		Change{Partition: 0, ID: "c1", Entry: &Entry{InFlight, at}},
		Change{Partition: 1, ID: "c2", Entry: &Entry{InFlight, at}},
		Change{Partition: 2, ID: "c3", Entry: &Entry{InFlight, at}},
		Change{Partition: 2, ID: "c5", Entry: &Entry{Expired, at}},
	); err != nil {
		t.Fatal(err)
	}
	if err := a.Record(ctx,
		Change{Partition: 0, ID: "c1", Entry: &Entry{Sent, at}},
		Change{Partition: 1, ID: "c2"},
		Change{Partition: 2, ID: "c3", Entry: &Entry{Unknown, at}},
	); err != nil {
		t.Fatal(err)
	}
	want(t, a, 0, "c1", Sent)
	want(t, a, 1, "c2", 0)
	want(t, a, 2, "c3", Unknown)
	want(t, a, 2, "c5", Expired)
	if _, _, err := a.Get(5, "x"); !errors.Is(err, ErrNotAssigned) {
		t.Fatalf("unassigned partition: %v", err)
	}

	// Partition 0 moves to a node with an empty state directory.
	if err := a.Revoke([]int32{0}); err != nil {
		t.Fatal(err)
	}
	b := newLedger(t, seeds, t.TempDir())
	if err := b.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	want(t, b, 0, "c1", Sent)
	if err := b.Record(ctx, Change{Partition: 0, ID: "c4", Entry: &Entry{Sent, at}}); err != nil {
		t.Fatal(err)
	}
	b.Revoke([]int32{0})

	// And back to the first node, whose store is stale: it catches up.
	if err := a.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	want(t, a, 0, "c4", Sent)
	want(t, a, 0, "c1", Sent)

	// Every state survives a restore from the changelog alone.
	if err := a.Revoke([]int32{2}); err != nil {
		t.Fatal(err)
	}
	c := newLedger(t, seeds, t.TempDir())
	if err := c.Assign(ctx, []int32{2}); err != nil {
		t.Fatal(err)
	}
	want(t, c, 2, "c3", Unknown)
	want(t, c, 2, "c5", Expired)
}

func TestExpire(t *testing.T) {
	ctx := context.Background()
	_, seeds := kafkatest.Cluster(t, 1)
	dir := t.TempDir()
	l := newLedger(t, seeds, dir)
	if err := l.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	recent := old.Add(40 * 24 * time.Hour)
	l.Record(ctx,
		Change{Partition: 0, ID: "old", Entry: &Entry{Sent, old}},
		Change{Partition: 0, ID: "old-inflight", Entry: &Entry{InFlight, old}},
		Change{Partition: 0, ID: "recent", Entry: &Entry{Sent, recent}},
	)
	n, err := l.Expire(ctx, recent.Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("expire: %d, %v", n, err)
	}
	want(t, l, 0, "old", 0)
	want(t, l, 0, "old-inflight", InFlight)
	want(t, l, 0, "recent", Sent)
	// The tombstone reached the changelog: a new node agrees.
	l.Close()
	m := newLedger(t, seeds, t.TempDir())
	if err := m.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	want(t, m, 0, "old", 0)
	want(t, m, 0, "recent", Sent)
}

func TestEntryCodec(t *testing.T) {
	e := Entry{Sent, time.UnixMilli(1772442000123).UTC()}
	got, err := DecodeEntry(EncodeEntry(e))
	if err != nil || got != e {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, b := range [][]byte{nil, {2}, {9, 0, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 10)} {
		if _, err := DecodeEntry(b); err == nil {
			t.Errorf("%x decoded", b)
		}
	}
}
