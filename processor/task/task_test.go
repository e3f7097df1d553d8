package task_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/processor/store"
	"github.com/microtrigger/microtrigger/processor/task/tasktest"
	"github.com/microtrigger/microtrigger/schema"
)

// TestLateEventsAreAppliedAndCounted offers an event older than the
// watermark: it is applied at once (its logical time is its own), counted
// as late, and not dropped.
func TestLateEventsAreAppliedAndCounted(t *testing.T) {
	pack, err := rules.Load(os.DirFS("../../testdata/rules"), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tk := tasktest.New(t, tasktest.Config{Pack: pack})
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	offer := func(id string, at time.Time, m map[string]any) {
		t.Helper()
		m["userId"], m["messageId"], m["timestamp"] = "u1", id, schema.FormatTime(at)
		raw, _ := json.Marshal(m)
		if err := tk.Task.Offer(tasktest.Input(t, raw, 0)); err != nil {
			t.Fatal(err)
		}
	}
	pricing := func() map[string]any {
		return map[string]any{"type": "page", "context": map[string]any{"page": map[string]any{"path": "/pricing"}}}
	}
	offer("traits", t0.Add(-time.Minute), map[string]any{"type": "identify", "traits": map[string]any{"email": "u1@example.com", "email_opt_in": true}})
	offer("v1", t0, pricing())
	if err := tk.Advance(t0.Add(10 * time.Minute)); err != nil { // W = 10:09:55
		t.Fatal(err)
	}
	offer("v2", t0.Add(5*time.Minute), pricing()) // late by almost five minutes
	if err := tk.AdvanceWatermark(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	out := tk.Flush()
	if out.Stats.Late != 1 {
		t.Errorf("late events counted: %d, want 1", out.Stats.Late)
	}
	if len(out.Commands) != 1 || !out.Commands[0].SendAt.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("the late view was not applied at its own time: %+v", out.Commands)
	}
}

// TestStoredStateOfARemovedTrigger loads a user whose stored state has a
// pending run of a trigger the pack no longer has: the run is dropped, and
// its timer neither fires nor loops.
func TestStoredStateOfARemovedTrigger(t *testing.T) {
	pack, err := rules.Load(os.DirFS("../../testdata/rules"), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tk := tasktest.New(t, tasktest.Config{Pack: pack})
	db := tk.DB
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	u := state.New("u1")
	u.Triggers = map[string]*state.Trigger{"retired-trigger": {Runs: 1, Run: &state.Run{Seq: 1, Phase: state.PhaseStep, Due: t0.Add(time.Hour)}}}
	v, err := state.NewCodec().Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	h := schema.UserHash("u1")
	b := db.NewBatch()
	b.Put(store.UserKey(h), v)
	b.Put(store.TimerKey(h), store.TimerValue(t0.Add(time.Hour)))
	if err := db.Apply(b); err != nil {
		t.Fatal(err)
	}
	if err := tk.Reset(); err != nil { // read what was just written
		t.Fatal(err)
	}
	if err := tk.AdvanceWatermark(t0.Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	out := tk.Flush()
	if len(out.Commands)+len(out.Suppressions)+len(out.Errors) != 0 {
		t.Fatalf("a retired trigger produced %+v", out)
	}
	if _, timers := tk.Pending(); timers != 0 {
		t.Fatalf("%d timers still pending", timers)
	}
}

// TestLegacyTimerKeys opens a store written when due-index keys held the
// due time (t + due + hash): the timer is loaded, and the next write
// replaces the old key by the user's.
func TestLegacyTimerKeys(t *testing.T) {
	pack, err := rules.Load(os.DirFS("../../testdata/rules"), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tk := tasktest.New(t, tasktest.Config{Pack: pack})
	due := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
	h := schema.UserHash("u1")
	legacy := append([]byte{'t'}, binary.BigEndian.AppendUint64(nil, uint64(due.UnixNano())^(1<<63))...)
	legacy = append(legacy, h[:]...)
	b := tk.DB.NewBatch()
	b.Put(legacy, []byte{1})
	if err := tk.DB.Apply(b); err != nil {
		t.Fatal(err)
	}
	if err := tk.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, timers := tk.Pending(); timers != 1 {
		t.Fatalf("%d timers loaded from the legacy key, want 1", timers)
	}
	tk.Flush()
	var keys [][]byte
	tk.DB.All(func(k, v []byte) error {
		keys = append(keys, append([]byte(nil), k...))
		if bytes.Equal(k, store.TimerKey(h)) && !bytes.Equal(v, store.TimerValue(due)) {
			t.Errorf("timer value %x, want %x", v, store.TimerValue(due))
		}
		return nil
	})
	if len(keys) != 1 || !bytes.Equal(keys[0], store.TimerKey(h)) {
		t.Fatalf("store keys after the write: %x, want only the user's timer key", keys)
	}
}

// TestSnapshotForReplay: the waiting events are left to the replay of the
// input, from the earliest of them, passing over what is already applied;
// when that would pass over too much (one event stamped ahead waits while
// those after it are applied), it is written with the snapshot instead.
func TestSnapshotForReplay(t *testing.T) {
	pack, err := rules.Load(os.DirFS("../../testdata/rules"), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	tk := tasktest.New(t, tasktest.Config{Pack: pack})
	for i := int64(0); i < 10; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		if i == 2 {
			at = t0.Add(time.Hour) // ahead of the others: waits
		}
		raw, _ := json.Marshal(map[string]any{"type": "page", "userId": "u1", "messageId": fmt.Sprint("m", i),
			"timestamp": schema.FormatTime(at), "context": map[string]any{"page": map[string]any{"path": "/blog"}}})
		tk.Offer(tasktest.Input(t, raw, i))
	}
	if err := tk.Advance(t0.Add(20 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	if events, _ := tk.Pending(); events != 1 {
		t.Fatalf("%d events waiting, want the one stamped ahead", events)
	}
	w, err := tk.SnapshotForReplay(10, 100)
	if err != nil {
		t.Fatal(err)
	}
	if w.Resume != 2 || fmt.Sprint(w.Skip) != "[3 4 5 6 7 8 9]" {
		t.Errorf("resume %d, skip %v; want 2, [3 4 5 6 7 8 9]", w.Resume, w.Skip)
	}
	for _, c := range w.Changes {
		if c.Key[0] == 'b' {
			t.Errorf("the waiting event was written: the replay reads it again")
		}
	}
	w, err = tk.SnapshotForReplay(10, 3)
	if err != nil {
		t.Fatal(err)
	}
	buffered := 0
	for _, c := range w.Changes {
		if c.Key[0] == 'b' && c.Value != nil {
			buffered++
		}
	}
	if w.Resume != 10 || len(w.Skip) != 0 || buffered != 1 {
		t.Errorf("resume %d, skip %v, %d events written; want 10, none, the waiting one", w.Resume, w.Skip, buffered)
	}
}
