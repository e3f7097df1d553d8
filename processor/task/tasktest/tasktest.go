// Package tasktest sets up a task over a real Pebble store for tests and
// benchmarks: the rule pack, the engine, the store (in memory, or on disk)
// and the task, with helpers that fail the test instead of returning
// errors. Production code never imports it.
package tasktest

import (
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/microtrigger/microtrigger/processor/engine"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/store"
	"github.com/microtrigger/microtrigger/processor/task"
	"github.com/microtrigger/microtrigger/schema"
)

// Config shapes a Task.
type Config struct {
	// Pack is the rule pack. Required.
	Pack *rules.Pack
	// Dir puts the store on disk; by default it is in memory (FS, when
	// set, is reused so that a test can reopen the same store).
	Dir string
	FS  vfs.FS
	// CacheUsers is the task's cache; 0 takes the task's default.
	CacheUsers int
}

// Task is a task with its store. Both are closed when the test ends.
type Task struct {
	*task.Task
	DB *store.DB
	t  testing.TB
}

// New opens a store and a task over it.
func New(t testing.TB, c Config) *Task {
	t.Helper()
	opts := store.Options{FS: c.FS}
	if c.Dir == "" && opts.FS == nil {
		opts.FS = vfs.NewMem()
	}
	db, err := store.Open(c.Dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := task.New(task.Config{Engine: engine.New(c.Pack, engine.Options{}), Store: db, CacheUsers: c.CacheUsers})
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	h := &Task{Task: tk, DB: db, t: t}
	t.Cleanup(func() { db.Close() })
	return h
}

// Close closes the store before the test ends (to reopen it).
func (h *Task) Close() {
	if err := h.DB.Close(); err != nil && err != store.ErrClosed {
		h.t.Fatal(err)
	}
}

// Input decodes raw with the production validator.
func Input(t testing.TB, raw []byte, seq int64) task.Input {
	t.Helper()
	ev, err := schema.DecodeEvent(raw)
	if err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return task.Input{Event: ev, Raw: raw, Seq: seq}
}

// Offer offers in and moves the clock to its event time, as replay does.
func (h *Task) Offer(in task.Input) {
	h.t.Helper()
	if err := h.Task.Offer(in); err != nil {
		h.t.Fatal(err)
	}
	if err := h.Task.Advance(in.Event.Timestamp); err != nil {
		h.t.Fatal(err)
	}
}

// Flush takes the output and applies the state to the store.
func (h *Task) Flush() task.Output {
	h.t.Helper()
	out, err := h.Task.Flush(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}
