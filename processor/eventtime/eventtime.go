package eventtime

import (
	"container/heap"
	"time"
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

// Timers is the due index: each user with pending timers has one entry, the
// due time of their earliest timer.
type Timers struct {
	due map[Key]time.Time
	h   timerHeap // may hold stale entries; due is the truth
}

type timerEntry struct {
	due time.Time
	key Key
}

// Set makes due the user's next timer; the zero time removes it.
func (t *Timers) Set(k Key, due time.Time) {
	if t.due == nil {
		t.due = map[Key]time.Time{}
	}
	if due.IsZero() {
		delete(t.due, k)
		return
	}
	if old, ok := t.due[k]; ok && old.Equal(due) {
		return
	}
	t.due[k] = due
	heap.Push(&t.h, timerEntry{due, k})
	// Stale entries are dropped lazily; compact when they dominate.
	if len(t.h) > 64 && len(t.h) > 4*len(t.due) {
		t.compact()
	}
}

// Get returns the user's next timer.
func (t *Timers) Get(k Key) (time.Time, bool) {
	d, ok := t.due[k]
	return d, ok
}

// Len returns how many users have a pending timer.
func (t *Timers) Len() int { return len(t.due) }

// Peek returns the earliest timer.
func (t *Timers) Peek() (time.Time, Key, bool) {
	for len(t.h) > 0 {
		top := t.h[0]
		if d, ok := t.due[top.key]; ok && d.Equal(top.due) {
			return top.due, top.key, true
		}
		heap.Pop(&t.h)
	}
	return time.Time{}, Key{}, false
}

// Reset empties the index.
func (t *Timers) Reset() { t.due, t.h = nil, nil }

func (t *Timers) compact() {
	h := make(timerHeap, 0, len(t.due))
	for k, d := range t.due {
		h = append(h, timerEntry{d, k})
	}
	heap.Init(&h)
	t.h = h
}

type timerHeap []timerEntry

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return string(h[i].key[:]) < string(h[j].key[:])
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

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
