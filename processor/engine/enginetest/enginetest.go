// Package enginetest grows realistic user states by replaying a generated
// clickstream (internal/clickstream) through an engine, the way a driver
// with no grace would: each user's events in stream order, and before each
// event that user's timers due at or before its time. Benchmarks of the
// engine and of the state encoding measure on these users rather than on
// small, fresh ones, and the engine's differential tests digest what the
// replay produced. Nothing here is used at run time.
package enginetest

import (
	"fmt"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/internal/clickstream"
	"github.com/microtrigger/microtrigger/processor/engine"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/schema"
)

// Step is one input a replay applied: an event, or the user's timers due
// at Due (Event nil).
type Step struct {
	User   *state.User // after the input; nil once erased
	Key    string
	Event  *schema.Event
	Due    time.Time
	Result *engine.Result
}

// Decode decodes every event of stream with the production decoder.
func Decode(stream []clickstream.Event) ([]schema.Event, error) {
	out := make([]schema.Event, len(stream))
	for i, e := range stream {
		ev, err := schema.DecodeEvent(e.Value)
		if err != nil {
			return nil, fmt.Errorf("decode generated event %d: %w", i, err)
		}
		out[i] = ev
	}
	return out, nil
}

// Player applies events to users it creates as they appear, as a driver
// with no grace does.
type Player struct {
	Engine *engine.Engine
	// States are the users' states, by user key.
	States map[string]*state.User
	// Erased are the keys whose state a delete removed; their later
	// events are dropped.
	Erased map[string]bool
	// Steps counts the inputs applied (events and timer firings).
	Steps int
	// Reload, when not nil, replaces a user's state before each of its
	// inputs, as a driver's cache miss does (decode, reconcile).
	Reload func(*state.User) *state.User
}

// NewPlayer returns a player with no users.
func NewPlayer(eng *engine.Engine) *Player {
	return &Player{Engine: eng, States: map[string]*state.User{}, Erased: map[string]bool{}}
}

// Apply fires the user's timers due at or before the event's time, then
// applies the event. fn, when not nil, is called after every input.
func (p *Player) Apply(ev *schema.Event, fn func(*Step)) {
	key := ev.UserKey()
	if p.Erased[key] {
		return
	}
	u := p.States[key]
	if u == nil {
		if ev.Type == schema.TypeDelete {
			p.Erased[key] = true
			return
		}
		u = state.New(key)
		p.States[key] = u
	} else if p.Reload != nil {
		u = p.Reload(u)
		p.States[key] = u
	}
	for {
		due, ok := u.NextDue()
		if !ok || due.After(ev.Timestamp) {
			break
		}
		res := p.Engine.Timer(u, due)
		p.Steps++
		if fn != nil {
			fn(&Step{User: u, Key: key, Due: due, Result: &res})
		}
		if p.Reload != nil {
			u = p.Reload(u)
			p.States[key] = u
		}
	}
	res := p.Engine.Event(u, ev)
	p.Steps++
	if res.Erase {
		delete(p.States, key)
		p.Erased[key] = true
		u = nil
	}
	if fn != nil {
		fn(&Step{User: u, Key: key, Event: ev, Result: &res})
	}
}

// Keys returns the keys of the users' states, sorted.
func (p *Player) Keys() []string {
	keys := make([]string, 0, len(p.States))
	for k := range p.States {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Replay applies every event in order with a new Player and returns it.
// Timers still pending at the end are left pending.
func Replay(eng *engine.Engine, events []schema.Event, fn func(*Step)) *Player {
	p := NewPlayer(eng)
	p.Play(events, fn)
	return p
}

// Play applies every event in order.
func (p *Player) Play(events []schema.Event, fn func(*Step)) {
	for i := range events {
		p.Apply(&events[i], fn)
	}
}

// CPU measures the process's CPU time (user and system, every thread: the
// garbage collector's work too) over the measured parts of a benchmark.
// On a shared machine a benchmark's wall time includes the time other
// processes held the cores; its CPU time mostly does not.
type CPU struct {
	start, total time.Duration
	running      bool
}

// Start starts (or resumes) measuring.
func (c *CPU) Start() {
	if !c.running {
		c.start, c.running = processCPU(), true
	}
}

// Stop pauses measuring.
func (c *CPU) Stop() {
	if c.running {
		c.total += processCPU() - c.start
		c.running = false
	}
}

// Report stops measuring and reports the CPU time per op as cpu-ns/op.
func (c *CPU) Report(b *testing.B) {
	c.Stop()
	if b.N > 0 {
		b.ReportMetric(float64(c.total.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
