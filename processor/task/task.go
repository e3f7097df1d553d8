package task

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/microtrigger/microtrigger/processor/engine"
	"github.com/microtrigger/microtrigger/processor/eventtime"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/processor/store"
	"github.com/microtrigger/microtrigger/schema"
)

// Input is an event offered to a task.
type Input struct {
	Event schema.Event
	Raw   []byte // the record's bytes, kept while the event waits in the buffer
	Seq   int64  // arrival order within the partition (offset, line number)
}

// Change is one store write: also one changelog record. A nil Value deletes.
type Change struct {
	Key, Value []byte
}

// Stats counts what a batch did, for metrics. Every event offered reaches
// exactly one end, counted when it is reached (an event waiting to be
// ordered, in the batch that applies or drops it): applied by the engine
// (Events, less Duplicates and Erased), a duplicate, an erasure (a delete
// event), or dropped as an erased user's (ErasedDropped). Late counts the
// events applied at once because they were older than the watermark,
// whatever their end.
type Stats struct {
	Events, Late, Duplicates, Erased, ErasedDropped, Timers, Evaluated int
	Evictions                                                          state.Evictions
}

// Output is what a batch produced.
type Output struct {
	Commands     []schema.SendCommand
	Suppressions []schema.Suppression
	Changes      []Change
	Stats        Stats
	// Errors are rule evaluation errors (positions only, no user data).
	Errors []error
	// Erased lists the users erased in this batch: once the batch is
	// applied, their old values should be purged from the store's files.
	Erased []store.Hash
}

// Config configures a task.
type Config struct {
	Engine *engine.Engine
	Store  *store.DB
	// Grace overrides the pack's grace when non-nil.
	Grace *time.Duration
	// CacheUsers is how many decoded user states stay in memory between
	// batches. Default 50000.
	CacheUsers int
}

// Task processes one partition.
type Task struct {
	eng   *engine.Engine
	db    *store.DB
	codec *state.Codec
	grace time.Duration
	clock *eventtime.Clock
	// storedClock is the clock as the store has it (zero: none).
	storedClock time.Time
	buf         eventtime.Buffer
	timers      eventtime.Timers
	cache       int

	users map[store.Hash]*entry
	dirty map[store.Hash]bool
	// persisted holds the buffer keys the store has; applied ones are
	// deleted at Flush, new ones written.
	persisted map[bufKey]bool
	// legacy are due-index entries in the store's former layout: the next
	// Write replaces them.
	legacy []legacyTimer
	out    Output
}

type legacyTimer struct {
	key []byte
	h   store.Hash
	due time.Time
}

type bufKey struct {
	t   int64
	seq int64
}

type bufItem struct {
	in   Input
	hash store.Hash
}

type entry struct {
	u      *state.User // nil when erased
	erased bool
	// timerStored: the store's due index has an entry for the user, which
	// a write must replace or delete. The due time itself is the user
	// state's (state.User.NextDue); the index holds it derived.
	timerStored bool
}

// New opens a task over a store, loading its due index and reorder buffer.
func New(cfg Config) (*Task, error) {
	grace := cfg.Engine.Policy().Grace
	if cfg.Grace != nil {
		grace = *cfg.Grace
	}
	if cfg.CacheUsers == 0 {
		cfg.CacheUsers = 50000
	}
	t := &Task{
		eng: cfg.Engine, db: cfg.Store, codec: state.NewCodec(),
		grace: grace, cache: cfg.CacheUsers,
	}
	if err := t.load(); err != nil {
		return nil, err
	}
	return t, nil
}

// load (re)builds the clock, the in-memory index and the buffer from the
// store.
func (t *Task) load() error {
	c, err := t.db.Clock()
	if err != nil {
		return fmt.Errorf("load clock: %w", err)
	}
	t.clock = eventtime.NewClock(t.grace)
	t.clock.Advance(c)
	t.storedClock = c
	t.users = map[store.Hash]*entry{}
	t.dirty = map[store.Hash]bool{}
	t.persisted = map[bufKey]bool{}
	t.buf = eventtime.Buffer{}
	t.timers.Reset()
	t.out = Output{}
	t.legacy = nil
	if err := t.db.Timers(func(due time.Time, h store.Hash, legacyKey []byte) error {
		t.timers.Set(h, time.Time{}, due)
		if legacyKey != nil {
			t.legacy = append(t.legacy, legacyTimer{legacyKey, h, due})
		}
		return nil
	}); err != nil {
		return fmt.Errorf("load due index: %w", err)
	}
	return t.db.Buffered(func(ts time.Time, seq int64, raw []byte) error {
		ev, err := schema.DecodeEvent(raw)
		if err != nil {
			return fmt.Errorf("load reorder buffer: stored event does not decode: %w", err)
		}
		raw = append([]byte(nil), raw...)
		t.persisted[bufKey{ts.UnixNano(), seq}] = true
		t.buf.Push(eventtime.Item{Time: ts, Seq: seq, Value: &bufItem{in: Input{Event: ev, Raw: raw, Seq: seq}, hash: schema.UserHash(ev.UserKey())}})
		return nil
	})
}

// Reset forgets everything since the last Flush applied to the store (an
// aborted transaction) and reloads from the store.
func (t *Task) Reset() error { return t.load() }

// Clock returns the task's clock.
func (t *Task) Clock() *eventtime.Clock { return t.clock }

// Watermark returns the current watermark.
func (t *Task) Watermark() time.Time { return t.clock.Watermark() }

// Pending returns how many events wait in the buffer and how many users have
// pending timers.
func (t *Task) Pending() (events, timers int) { return t.buf.Len(), t.timers.Len() }

// Wake returns the clock value at which the next waiting input (an event
// in the buffer, a timer) becomes ready, and whether there is one: a driver
// moving the clock with the wall clock need not look before then.
func (t *Task) Wake() (time.Time, bool) {
	it, hasEv := t.buf.Peek()
	due, _, hasTm := t.timers.Peek()
	switch {
	case hasEv && (!hasTm || it.Time.Before(due)):
		return it.Time.Add(t.grace), true
	case hasTm:
		return due.Add(t.grace), true
	}
	return time.Time{}, false
}

// Offer adds an event. An event at or before the watermark is late: it is
// applied at once (and counted), never dropped. Others wait for Advance.
func (t *Task) Offer(in Input) error {
	w := t.clock.Watermark()
	if !w.IsZero() && in.Event.Timestamp.Before(w) {
		t.out.Stats.Late++
		return t.applyEvent(&in)
	}
	h := schema.UserHash(in.Event.UserKey())
	if e := t.users[h]; e != nil && e.erased {
		t.out.Stats.ErasedDropped++
		return nil
	}
	t.buf.Push(eventtime.Item{Time: in.Event.Timestamp, Seq: in.Seq, Value: &bufItem{in: in, hash: h}})
	return nil
}

// dropErasedBuffered drops the waiting events of erased users before they
// would be written: an erased user's bytes must not reach the store's files
// again. They would be dropped when applied anyway; only the few events
// waiting at a snapshot are looked at.
func (t *Task) dropErasedBuffered() error {
	var err error
	t.buf.Remove(func(it eventtime.Item) bool {
		k := bufKey{it.Time.UnixNano(), it.Seq}
		if _, stored := t.persisted[k]; stored || err != nil {
			return false
		}
		var e *entry
		if e, err = t.get(it.Value.(*bufItem).hash); err != nil || !e.erased {
			return false
		}
		t.out.Stats.ErasedDropped++
		return true
	})
	return err
}

// Advance moves the clock to c (if later) and applies every input the new
// watermark makes ready.
func (t *Task) Advance(c time.Time) error {
	t.clock.Advance(c)
	return t.Drain()
}

// AdvanceWatermark moves the clock so that the watermark reaches w.
func (t *Task) AdvanceWatermark(w time.Time) error {
	return t.Advance(w.Add(t.clock.Grace()))
}

// Drain applies every input ready at the current watermark, in order.
func (t *Task) Drain() error {
	w := t.clock.Watermark()
	for {
		kind, it, due, key := eventtime.Next(w, &t.buf, &t.timers)
		switch kind {
		case eventtime.None:
			return nil
		case eventtime.Event:
			bi := it.Value.(*bufItem)
			if t.persisted[bufKey{it.Time.UnixNano(), it.Seq}] {
				// Applied now: Flush deletes its stored copy.
				t.persisted[bufKey{it.Time.UnixNano(), it.Seq}] = false
			}
			if err := t.applyEvent(&bi.in); err != nil {
				return err
			}
		case eventtime.Timer:
			if err := t.fireTimer(key, due); err != nil {
				return err
			}
		}
	}
}

func (t *Task) get(h store.Hash) (*entry, error) {
	if e := t.users[h]; e != nil {
		return e, nil
	}
	v, err := t.db.User(h)
	if err != nil {
		return nil, err
	}
	e := &entry{}
	switch {
	case v == nil:
	case state.IsErasedMarker(v):
		e.erased = true
	default:
		u, err := t.codec.Unmarshal(v)
		if err != nil {
			return nil, fmt.Errorf("load user %s: %w", schema.MaskUser(fmt.Sprintf("%x", h)), err)
		}
		// Every write stores the state and its due-index entry together.
		_, e.timerStored = u.NextDue()
		t.eng.Reconcile(u)
		e.u = u
	}
	t.users[h] = e
	return e, nil
}

func (t *Task) applyEvent(in *Input) error {
	h := schema.UserHash(in.Event.UserKey())
	e, err := t.get(h)
	if err != nil {
		return err
	}
	if e.erased {
		t.out.Stats.ErasedDropped++
		return nil
	}
	if e.u == nil {
		if in.Event.Type == schema.TypeDelete {
			// Nothing stored yet: still leave a marker, so later events
			// for the key are dropped.
			t.out.Stats.Events++
			t.erase(h, e)
			return nil
		}
		e.u = state.New(in.Event.UserKey())
	}
	before, _ := e.u.NextDue()
	res := t.eng.Event(e.u, &in.Event)
	t.out.Stats.Events++
	switch {
	case res.Duplicate:
		t.out.Stats.Duplicates++
		return nil
	case res.Erase:
		t.erase(h, e)
		return nil
	}
	t.collect(h, e, &res, before)
	return nil
}

func (t *Task) erase(h store.Hash, e *entry) {
	if e.u != nil {
		if due, ok := e.u.NextDue(); ok {
			t.timers.Set(h, due, time.Time{})
		}
	}
	e.u, e.erased = nil, true
	t.dirty[h] = true
	t.out.Stats.Erased++
	t.out.Erased = append(t.out.Erased, h)
	// Events of this user still waiting would only be dropped later;
	// drop them now so their bytes leave the store at the next Flush.
	t.buf.Remove(func(it eventtime.Item) bool {
		if it.Value.(*bufItem).hash != h {
			return false
		}
		t.out.Stats.ErasedDropped++
		if t.persisted[bufKey{it.Time.UnixNano(), it.Seq}] {
			t.persisted[bufKey{it.Time.UnixNano(), it.Seq}] = false
		}
		return true
	})
}

func (t *Task) fireTimer(h store.Hash, due time.Time) error {
	e, err := t.get(h)
	if err != nil {
		return err
	}
	if e.u == nil {
		t.timers.Set(h, due, time.Time{})
		t.dirty[h] = true
		return nil
	}
	if next, _ := e.u.NextDue(); !next.Equal(due) {
		// An entry the user's state no longer has (its trigger left the
		// pack): move it to the state's, fire nothing.
		t.timers.Set(h, due, next)
		return nil
	}
	res := t.eng.Timer(e.u, due)
	t.out.Stats.Timers++
	t.collect(h, e, &res, due)
	if next, ok := e.u.NextDue(); ok && !next.After(due) {
		// The engine never leaves a timer at or before the one it fired;
		// if it did, drop it rather than loop.
		t.timers.Set(h, next, time.Time{})
		t.out.Errors = append(t.out.Errors, fmt.Errorf("engine left a timer due %s at or before %s; dropped", schema.FormatTime(next), schema.FormatTime(due)))
	}
	return nil
}

// collect takes in what the engine did to a user whose next timer was
// before (zero: none).
func (t *Task) collect(h store.Hash, e *entry, res *engine.Result, before time.Time) {
	t.dirty[h] = true
	due, _ := e.u.NextDue()
	t.timers.Set(h, before, due)
	t.out.Commands = append(t.out.Commands, res.Commands...)
	t.out.Suppressions = append(t.out.Suppressions, res.Suppressions...)
	t.out.Errors = append(t.out.Errors, res.Errors...)
	t.out.Stats.Evaluated += res.Evaluated
	t.out.Stats.Evictions.Add(res.Evictions)
}

// HasOutput reports whether the inputs since the last Take produced
// commands or suppressions.
func (t *Task) HasOutput() bool { return len(t.out.Commands) > 0 || len(t.out.Suppressions) > 0 }

// Take returns what the inputs since the last Take produced: commands,
// suppressions, counts and rule errors. It changes no state: that is
// Snapshot's.
func (t *Task) Take() Output {
	out := t.out
	out.Erased = nil // purged when the snapshot that erases them is applied
	t.out = Output{Erased: t.out.Erased}
	return out
}

// Write is one pending write of the task's state: every change since the
// previous applied Write, coalesced per key, in key order within each kind.
// The driver makes Changes durable elsewhere first (the live processor
// writes them to the changelog in its transaction), may append changes of
// its own, and then applies the Write to the store, or discards it.
type Write struct {
	// Changes are the store writes; also the changelog's records.
	Changes []Change
	// Resume and Skip, from SnapshotForReplay, say where a replay of the
	// input starts and what it passes over.
	Resume int64
	Skip   []int64

	t          *Task
	users      []store.Hash        // dirty users written
	timers     map[store.Hash]bool // whether the store now has a due-index entry for each
	legacy     int                 // legacy due-index entries replaced
	buffered   []bufKey            // buffer entries written
	unbuffered []bufKey            // buffer entries deleted
	clock      time.Time
	erased     []store.Hash
}

// Snapshot returns the changes since the last applied Write. Nothing
// changes in the task until the Write is applied, but for waiting events of
// erased users, which are dropped.
func (t *Task) Snapshot() (*Write, error) { return t.snapshot(-1, 0) }

// SnapshotForReplay is Snapshot for a driver that can read its input
// again from a sequence number on (the live processor, from Kafka): the
// events still waiting to be ordered are then not written, when the input
// from Write.Resume on holds them; consumed is the sequence number after
// the last input offered. Write.Resume is where the replay must start and
// Write.Skip lists the sequence numbers after it, at most maxSkips, whose
// inputs are already in the state (applied, or not events), which the
// replay must pass over. For input in order, every waiting event is
// after every applied one: nothing is skipped.
func (t *Task) SnapshotForReplay(consumed int64, maxSkips int) (*Write, error) {
	return t.snapshot(consumed, maxSkips)
}

func (t *Task) snapshot(consumed int64, maxSkips int) (*Write, error) {
	if err := t.dropErasedBuffered(); err != nil {
		return nil, err
	}
	w := &Write{t: t, timers: map[store.Hash]bool{}, clock: t.clock.C(), erased: t.out.Erased, Resume: consumed}
	if consumed >= 0 {
		w.Resume, w.Skip = t.resumePoint(consumed, maxSkips)
	}
	put := func(k, v []byte) { w.Changes = append(w.Changes, Change{Key: k, Value: v}) }
	w.users = make([]store.Hash, 0, len(t.dirty))
	for h := range t.dirty {
		w.users = append(w.users, h)
	}
	sort.Slice(w.users, func(i, j int) bool { return bytes.Compare(w.users[i][:], w.users[j][:]) < 0 })
	for _, h := range w.users {
		e := t.users[h]
		var v []byte
		if e.erased {
			v = state.ErasedMarker()
		} else {
			var err error
			if v, err = t.codec.Marshal(e.u); err != nil {
				return nil, err
			}
		}
		put(store.UserKey(h), v)
		var due time.Time
		if e.u != nil {
			due, _ = e.u.NextDue()
		}
		if !due.IsZero() {
			put(store.TimerKey(h), store.TimerValue(due))
			w.timers[h] = true
		} else if e.timerStored {
			put(store.TimerKey(h), nil)
			w.timers[h] = false
		}
	}
	for _, l := range t.legacy {
		put(l.key, nil)
		if !t.dirty[l.h] {
			put(store.TimerKey(l.h), store.TimerValue(l.due))
		}
	}
	w.legacy = len(t.legacy)
	// The reorder buffer: write what waits and is not stored yet, delete
	// what was stored and has been applied.
	var bufChanges []Change
	t.buf.Each(func(it eventtime.Item) {
		k := bufKey{it.Time.UnixNano(), it.Seq}
		_, stored := t.persisted[k]
		switch replayed := consumed >= 0 && it.Seq >= w.Resume; {
		case !stored && !replayed:
			bufChanges = append(bufChanges, Change{store.BufferKey(it.Time, it.Seq), it.Value.(*bufItem).in.Raw})
			w.buffered = append(w.buffered, k)
		case stored && replayed:
			// The replay reads it again: a stored copy would be a
			// second one.
			bufChanges = append(bufChanges, Change{store.BufferKey(it.Time, it.Seq), nil})
			w.unbuffered = append(w.unbuffered, k)
		}
	})
	for k, live := range t.persisted {
		if !live {
			bufChanges = append(bufChanges, Change{store.BufferKey(time.Unix(0, k.t), k.seq), nil})
			w.unbuffered = append(w.unbuffered, k)
		}
	}
	sort.Slice(bufChanges, func(i, j int) bool { return bytes.Compare(bufChanges[i].Key, bufChanges[j].Key) < 0 })
	w.Changes = append(w.Changes, bufChanges...)
	// The clock goes with the state it produced, so that a restart or
	// another owner goes on from the same watermark. A move that changed
	// nothing else is not worth a write: a restarted task that is caught
	// up moves its clock again at once.
	if len(w.Changes) > 0 && !w.clock.Equal(t.storedClock) {
		put(store.ClockKey(), store.EncodeClock(w.clock))
	}
	return w, nil
}

// resumePoint chooses where a replay of the input must start for a
// snapshot taken after consumed: at the earliest waiting event, unless more
// than maxSkips inputs after it are already in the state (an event stamped
// ahead of the others waits while the ones after it are applied); then at
// the next waiting event, and so on. Waiting events before the point are
// written with the snapshot.
func (t *Task) resumePoint(consumed int64, maxSkips int) (int64, []int64) {
	var waiting []int64
	t.buf.Each(func(it eventtime.Item) {
		if it.Seq < consumed {
			waiting = append(waiting, it.Seq)
		}
	})
	slices.Sort(waiting)
	for i, seq := range waiting {
		if skips := int(consumed-seq) - (len(waiting) - i); skips <= maxSkips {
			skip := make([]int64, 0, skips)
			next := i
			for s := seq; s < consumed; s++ {
				if next < len(waiting) && waiting[next] == s {
					next++
					continue
				}
				skip = append(skip, s)
			}
			return seq, skip
		}
	}
	return consumed, nil
}

// Empty reports whether the write changes nothing.
func (w *Write) Empty() bool { return len(w.Changes) == 0 }

// Apply writes the changes to the store in one atomic batch, with the
// driver's metadata, then purges erased users from the store's files and
// lets clean users leave the cache.
func (w *Write) Apply(ctx context.Context, meta ...store.Meta) error {
	t := w.t
	b := t.db.NewBatch()
	for _, c := range w.Changes {
		if err := b.Put(c.Key, c.Value); err != nil {
			b.Discard()
			return err
		}
	}
	for _, m := range meta {
		if err := b.SetMetaInt64(m.Name, m.Value); err != nil {
			b.Discard()
			return err
		}
	}
	if err := t.db.Apply(b); err != nil {
		return err
	}
	for h, stored := range w.timers {
		t.users[h].timerStored = stored
	}
	t.legacy = t.legacy[w.legacy:]
	for _, k := range w.buffered {
		t.persisted[k] = true
	}
	for _, k := range w.unbuffered {
		delete(t.persisted, k)
	}
	if len(w.Changes) > 0 {
		t.storedClock = w.clock
	}
	for _, h := range w.users {
		delete(t.dirty, h)
	}
	t.out.Erased = t.out.Erased[len(w.erased):]
	for _, h := range w.erased {
		if err := t.db.PurgeUser(ctx, h); err != nil {
			return fmt.Errorf("purge erased user from store files: %w", err)
		}
	}
	t.trimCache()
	return nil
}

// Discard drops the write; the task's changes stay pending for the next
// Snapshot.
func (w *Write) Discard() {}

// Dirty returns how many users changed since the last applied Write: they
// stay in memory until then.
func (t *Task) Dirty() int { return len(t.dirty) }

// Flush takes the output and applies a snapshot at once: for drivers whose
// store is the only copy (replay, rule tests).
func (t *Task) Flush(ctx context.Context) (Output, error) {
	out := t.Take()
	w, err := t.Snapshot()
	if err != nil {
		return Output{}, err
	}
	out.Changes = w.Changes
	return out, w.Apply(ctx)
}

// trimCache keeps at most cfg.CacheUsers decoded users. Which ones go does
// not matter to the output: a user read back decodes to the same state.
func (t *Task) trimCache() {
	over := len(t.users) - t.cache
	if over <= 0 {
		return
	}
	for h := range t.users {
		if over == 0 {
			break
		}
		if t.dirty[h] {
			continue // not written yet: the store has an older state
		}
		delete(t.users, h)
		over--
	}
}
