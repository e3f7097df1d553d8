package eventtime

import (
	"container/heap"
	"time"

	"github.com/google/btree"
)

// Clock is a driver's notion of time: C and W = C − grace.
type Clock struct {
	c     time.Time
	grace time.Duration
}

// NewClock returns a clock at the zero time.
func NewClock(grace time.Duration) *Clock { return &Clock{grace: grace} }

// Advance moves C forward to t (never back).
func (c *Clock) Advance(t time.Time) {
	if t.After(c.c) {
		c.c = t
	}
}

// C returns the clock.
func (c *Clock) C() time.Time { return c.c }

// Watermark returns W = C − grace: inputs at or before W are ready.
func (c *Clock) Watermark() time.Time {
	if c.c.IsZero() {
		return time.Time{}
	}
	return c.c.Add(-c.grace)
}

// Grace returns the clock's grace.
func (c *Clock) Grace() time.Duration { return c.grace }

// Item is an event waiting to be applied.
type Item struct {
	Time  time.Time
	Seq   int64 // arrival order: the source offset, or a line number
	Value any   // the driver's event
}

// Buffer holds events until the watermark passes them.
type Buffer struct{ h itemHeap }

// Push adds an event.
func (b *Buffer) Push(it Item) { heap.Push(&b.h, it) }

// Len returns how many events wait.
func (b *Buffer) Len() int { return len(b.h) }

// Peek returns the earliest event.
func (b *Buffer) Peek() (Item, bool) {
	if len(b.h) == 0 {
		return Item{}, false
	}
	return b.h[0], true
}

// Pop removes and returns the earliest event.
func (b *Buffer) Pop() Item { return heap.Pop(&b.h).(Item) }

// Each calls fn for every waiting event, in no particular order.
func (b *Buffer) Each(fn func(Item)) {
	for _, it := range b.h {
		fn(it)
	}
}

// Remove drops the events for which drop returns true.
func (b *Buffer) Remove(drop func(Item) bool) int {
	kept := b.h[:0]
	n := 0
	for _, it := range b.h {
		if drop(it) {
			n++
			continue
		}
		kept = append(kept, it)
	}
	b.h = kept
	heap.Init(&b.h)
	return n
}

type itemHeap []Item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if !h[i].Time.Equal(h[j].Time) {
		return h[i].Time.Before(h[j].Time)
	}
	return h[i].Seq < h[j].Seq
}
func (h itemHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)   { *h = append(*h, x.(Item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// Key identifies a user in the due index (the user's hash).
type Key = [16]byte

// Timers is the due index: an ordered set of (due time, user), one entry
// per user with a pending timer, its earliest. It holds no truth of its
// own: a user's due time is the user's state's (state.User.NextDue), and the
// driver moves the user's entry whenever that changes, saying where it was.
// Due times are Unix nanoseconds in a B-tree, about 30 bytes per pending
// timer, since a partition may hold millions.
type Timers struct {
	t *btree.BTreeG[timerEntry]
}

type timerEntry struct {
	due int64
	key Key
}

func lessTimer(a, b timerEntry) bool {
	if a.due != b.due {
		return a.due < b.due
	}
	return string(a.key[:]) < string(b.key[:])
}

// Set moves a user's entry from old to due; a zero old means the user had
// none, a zero due that it has none now.
func (t *Timers) Set(k Key, old, due time.Time) {
	if t.t == nil {
		t.t = btree.NewG(32, lessTimer)
	}
	if !old.IsZero() {
		t.t.Delete(timerEntry{old.UnixNano(), k})
	}
	if !due.IsZero() {
		t.t.ReplaceOrInsert(timerEntry{due.UnixNano(), k})
	}
}

// Len returns how many users have a pending timer.
func (t *Timers) Len() int {
	if t.t == nil {
		return 0
	}
	return t.t.Len()
}

// Peek returns the earliest timer.
func (t *Timers) Peek() (time.Time, Key, bool) {
	if t.t == nil {
		return time.Time{}, Key{}, false
	}
	e, ok := t.t.Min()
	if !ok {
		return time.Time{}, Key{}, false
	}
	return time.Unix(0, e.due).UTC(), e.key, true
}

// Reset empties the index.
func (t *Timers) Reset() { t.t = nil }

// Kind says what Next returned.
type Kind uint8

// Kinds of input.
const (
	None Kind = iota
	Event
	Timer
)

// Next returns the next input ready at watermark w: the earliest of the
// buffer's first event and the earliest timer, if at or before w. A timer due
// at the same instant as an event comes first. It removes the event from the
// buffer; a timer stays in the index until the driver updates it.
func Next(w time.Time, b *Buffer, t *Timers) (Kind, Item, time.Time, Key) {
	it, hasEv := b.Peek()
	due, key, hasTm := t.Peek()
	if hasEv && it.Time.After(w) {
		hasEv = false
	}
	if hasTm && due.After(w) {
		hasTm = false
	}
	switch {
	case hasTm && (!hasEv || !due.After(it.Time)):
		return Timer, Item{}, due, key
	case hasEv:
		return Event, b.Pop(), time.Time{}, Key{}
	}
	return None, Item{}, time.Time{}, Key{}
}
