package ledger

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

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
		Change{Partition: 0, ID: "c1", Entry: &Entry{State: InFlight, At: at}},
		Change{Partition: 1, ID: "c2", Entry: &Entry{State: InFlight, At: at}},
		Change{Partition: 2, ID: "c3", Entry: &Entry{State: InFlight, At: at}},
		Change{Partition: 2, ID: "c5", Entry: &Entry{State: Expired, At: at}},
	); err != nil {
		t.Fatal(err)
	}
	if err := a.Record(ctx,
		Change{Partition: 0, ID: "c1", Entry: &Entry{State: Sent, At: at}},
		Change{Partition: 1, ID: "c2"},
		Change{Partition: 2, ID: "c3", Entry: &Entry{State: Unknown, At: at}},
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
	if err := b.Record(ctx, Change{Partition: 0, ID: "c4", Entry: &Entry{State: Sent, At: at}}); err != nil {
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
		Change{Partition: 0, ID: "old", Entry: &Entry{State: Sent, At: old}},
		Change{Partition: 0, ID: "old-inflight", Entry: &Entry{State: InFlight, At: old}},
		Change{Partition: 0, ID: "recent", Entry: &Entry{State: Sent, At: recent}},
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
	at := time.UnixMilli(1772442000123).UTC()
	for _, e := range []Entry{
		{State: Sent, At: at},
		{State: InFlight, At: at},
		{State: Unresolved, At: at, Deadline: at.Add(time.Hour), Note: "no answer: timeout",
			Source: &Source{Offset: 42, Key: []byte("user-1"), Value: []byte(`{"id":"c1"}`)}},
		{State: Unresolved, At: at, Source: &Source{}},
	} {
		got, err := DecodeEntry(EncodeEntry(e))
		if err != nil || !reflect.DeepEqual(got, norm(e)) {
			t.Errorf("round trip of %+v: %+v %v", e, got, err)
		}
	}
	unresolved := EncodeEntry(Entry{State: Unresolved, At: at, Note: "n", Source: &Source{Key: []byte("k")}})
	for _, b := range [][]byte{nil, {2}, {9, 0, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 10), {5, 0, 0, 0, 0, 0, 0, 0, 0},
		unresolved[:25], unresolved[:26], append(unresolved[:25:25], 0x80)} {
		if _, err := DecodeEntry(b); err == nil {
			t.Errorf("%x decoded", b)
		}
	}
}

// norm is e as decoding yields it: an Unresolved entry always has a
// Source, with non-nil key and value.
func norm(e Entry) Entry {
	if e.State == Unresolved {
		src := Source{Key: []byte{}, Value: []byte{}}
		if e.Source != nil {
			src.Offset = e.Source.Offset
			src.Key = append(src.Key, e.Source.Key...)
			src.Value = append(src.Value, e.Source.Value...)
		}
		e.Source = &src
	}
	return e
}

// FuzzDecodeEntry: any bytes decode or are refused, never a panic; what
// decodes encodes back to the same entry.
func FuzzDecodeEntry(f *testing.F) {
	at := time.UnixMilli(1772442000123).UTC()
	f.Add(EncodeEntry(Entry{State: Sent, At: at}))
	f.Add(EncodeEntry(Entry{State: Unresolved, At: at, Deadline: at.Add(time.Hour), Note: "cut",
		Source: &Source{Offset: 7, Key: []byte("u"), Value: []byte("{}")}}))
	f.Add([]byte{5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			return
		}
		again, err := DecodeEntry(EncodeEntry(e))
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("%x: decoded %+v, re-encoded to %+v (%v)", b, e, again, err)
		}
	})
}

// TestPendingIndex: the InFlight and Unresolved entries are listed without
// a scan of the ledger, by deadline, and the list survives a reopen of the
// store and a restore from the changelog alone.
func TestPendingIndex(t *testing.T) {
	ctx := context.Background()
	_, seeds := kafkatest.Cluster(t, 1)
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	src := &Source{Offset: 3, Key: []byte("user-1"), Value: []byte(`{"id":"c"}`)}
	dir := t.TempDir()
	a := newLedger(t, seeds, dir)
	if err := a.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	unresolved := func(deadline time.Time) *Entry {
		return &Entry{State: Unresolved, At: at, Deadline: deadline, Note: "cut", Source: src}
	}
	for _, cs := range [][]Change{
		{
			{Partition: 0, ID: "sent", Entry: &Entry{State: InFlight, At: at}},
			{Partition: 0, ID: "stale", Entry: &Entry{State: InFlight, At: at}},
			{Partition: 0, ID: "late", Entry: &Entry{State: InFlight, At: at}},
			{Partition: 0, ID: "soon", Entry: &Entry{State: InFlight, At: at}},
			{Partition: 0, ID: "settled", Entry: &Entry{State: InFlight, At: at}},
			{Partition: 0, ID: "expired", Entry: &Entry{State: Expired, At: at}},
		},
		{
			{Partition: 0, ID: "sent", Entry: &Entry{State: Sent, At: at}},
			{Partition: 0, ID: "late", Entry: unresolved(at.Add(2 * time.Hour))},
			{Partition: 0, ID: "soon", Entry: unresolved(at.Add(time.Hour))},
			// In one batch: pending, then settled.
			{Partition: 0, ID: "settled", Entry: unresolved(at.Add(time.Hour))},
			{Partition: 0, ID: "settled", Entry: &Entry{State: Unknown, At: at}},
		},
	} {
		if err := a.Record(ctx, cs...); err != nil {
			t.Fatal(err)
		}
	}
	want := []Pending{
		{ID: "stale", State: InFlight, At: at},
		{ID: "soon", State: Unresolved, At: at, Deadline: at.Add(time.Hour)},
		{ID: "late", State: Unresolved, At: at, Deadline: at.Add(2 * time.Hour)},
	}
	check := func(l *Ledger, how string) {
		t.Helper()
		got, err := l.Pending(0)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: pending %+v, want %+v", how, got, want)
		}
		e, ok, err := l.Get(0, "soon")
		if err != nil || !ok || !reflect.DeepEqual(e, norm(*unresolved(at.Add(time.Hour)))) {
			t.Fatalf("%s: entry %+v %v %v", how, e, ok, err)
		}
	}
	check(a, "recorded")
	if n, err := a.Expire(ctx, at.Add(time.Hour)); err != nil || n != 3 { // sent, settled, expired
		t.Fatalf("expire: %d %v", n, err)
	}
	check(a, "expired")
	a.Close()
	b := newLedger(t, seeds, dir)
	if err := b.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	check(b, "reopened")
	b.Close()
	c := newLedger(t, seeds, t.TempDir())
	if err := c.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	check(c, "restored")
	if err := c.Record(ctx, Change{Partition: 0, ID: "soon", Entry: &Entry{State: Sent, At: at}}, Change{Partition: 0, ID: "stale"}); err != nil {
		t.Fatal(err)
	}
	want = want[2:]
	got, _ := c.Pending(0)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after settling: pending %+v, want %+v", got, want)
	}
}

// TestRecordsOneAtATime: Records made side by side (the sink's concurrent
// SendGrid requests each record their attempt and their answer) never
// overlap between their changelog write and their store write. If they
// did, a Record acknowledged later could store an offset past a record
// another had written to the changelog only: killed in between, the
// sink would restart from that offset without the change (an InFlight
// mark lost is a command sent twice).
func TestRecordsOneAtATime(t *testing.T) {
	ctx := context.Background()
	_, seeds := kafkatest.Cluster(t, 1)
	l := newLedger(t, seeds, t.TempDir())
	if err := l.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	var inside, most atomic.Int32
	l.produced = func() {
		n := inside.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		runtime.Gosched() // let any other Record acknowledged meanwhile reach here
		inside.Add(-1)
	}
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var g errgroup.Group
	for w := range 16 {
		g.Go(func() error {
			for i := range 10 {
				if err := l.Record(ctx, Change{Partition: 0, ID: fmt.Sprintf("c%d-%d", w, i), Entry: &Entry{State: InFlight, At: at}}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if m := most.Load(); m != 1 {
		t.Fatalf("%d Records were between their changelog write and their store write at once, want 1", m)
	}
	// And every change is there after a restore from this store.
	if err := l.Revoke([]int32{0}); err != nil {
		t.Fatal(err)
	}
	if err := l.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	for w := range 16 {
		for i := range 10 {
			want(t, l, 0, fmt.Sprintf("c%d-%d", w, i), InFlight)
		}
	}
}
