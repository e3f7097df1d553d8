package engine

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/microtrigger/microtrigger/internal/invariants"
	"github.com/microtrigger/microtrigger/processor/policy"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/schema/zoneinfo"
)

// Engine runs a rule pack against user state. It is safe for concurrent
// use by many partitions: it holds no per-user data.
type Engine struct {
	pack   *rules.Pack
	policy policy.Config
	limits state.Limits
	codec  *state.Codec
	zones  *zoneinfo.DB
	// scratch pools what rule evaluation needs per input (*scratch), so
	// that an input allocates none of it.
	scratch sync.Pool
}

// Options tunes an Engine.
type Options struct {
	// Limits bounds per-user state; zero fields take DefaultLimits.
	Limits state.Limits
	// Policy, when non-nil, replaces the pack's policy (tests, backtests of
	// a different policy).
	Policy *policy.Config
	// Zones loads the users' time zones for quiet hours and caps. Drivers
	// share one among their engines, so each zone is loaded once. Default
	// a new zoneinfo.DB: the database embedded in the binary, never the
	// host's.
	Zones *zoneinfo.DB
}

// New returns an engine for pack.
func New(pack *rules.Pack, opts Options) *Engine {
	l := opts.Limits
	d := state.DefaultLimits()
	if l == (state.Limits{}) {
		l = d
	}
	e := &Engine{pack: pack, policy: pack.Policy, limits: l, codec: state.NewCodec(), zones: opts.Zones}
	if opts.Policy != nil {
		e.policy = *opts.Policy
	}
	if e.zones == nil {
		e.zones = zoneinfo.New()
	}
	return e
}

// Pack returns the engine's rule pack.
func (e *Engine) Pack() *rules.Pack { return e.pack }

// Policy returns the policy in force.
func (e *Engine) Policy() policy.Config { return e.policy }

// Result is what one input produced.
type Result struct {
	Commands     []schema.SendCommand
	Suppressions []schema.Suppression // includes quiet-hours deferrals
	// Duplicate: the event's messageId was seen before; nothing changed.
	Duplicate bool
	// Erase: a delete request. The driver deletes the user's state and
	// pending timers and keeps only an erasure marker.
	Erase bool
	// Evaluated counts the rule conditions evaluated (0 for an event no
	// rule reads).
	Evaluated int
	Evictions state.Evictions
	// Errors are rule evaluations that failed; each rule that failed was
	// treated as false. They carry positions, never user data.
	Errors []error
}

// Event applies one event to u; now is the event's time.
func (e *Engine) Event(u *state.User, ev *schema.Event) Result {
	if invariants.Enabled {
		return e.checked(u, func(u *state.User) Result { return e.event(u, ev) })
	}
	return e.event(u, ev)
}

// Timer fires every timer of u due at or before now, in due order. The
// driver calls it with now = the earliest due time (u.NextDue).
func (e *Engine) Timer(u *state.User, now time.Time) Result {
	if invariants.Enabled {
		return e.checked(u, func(u *state.User) Result { return e.timer(u, now) })
	}
	return e.timer(u, now)
}

// checked runs step twice, on u and on a copy, and panics if the results or
// the new states differ: the engine must be a function of its inputs.
func (e *Engine) checked(u *state.User, step func(*state.User) Result) Result {
	clone, err := e.codec.Clone(u)
	if err != nil {
		panic(fmt.Sprintf("invariants: clone user state: %v", err))
	}
	r1 := step(u)
	r2 := step(clone)
	b1, err1 := e.codec.Marshal(u)
	b2, err2 := e.codec.Marshal(clone)
	if err1 != nil || err2 != nil || !bytes.Equal(b1, b2) {
		panic("invariants: engine step is not deterministic: states differ")
	}
	if !sameResult(&r1, &r2) {
		panic("invariants: engine step is not deterministic: results differ")
	}
	return r1
}

func sameResult(a, b *Result) bool {
	if len(a.Commands) != len(b.Commands) || len(a.Suppressions) != len(b.Suppressions) ||
		a.Duplicate != b.Duplicate || a.Erase != b.Erase || a.Evaluated != b.Evaluated {
		return false
	}
	for i := range a.Commands {
		x, _ := schema.MarshalCommand(&a.Commands[i])
		y, _ := schema.MarshalCommand(&b.Commands[i])
		if !bytes.Equal(x, y) {
			return false
		}
	}
	for i := range a.Suppressions {
		x, _ := schema.AppendSuppression(nil, &a.Suppressions[i])
		y, _ := schema.AppendSuppression(nil, &b.Suppressions[i])
		if !bytes.Equal(x, y) {
			return false
		}
	}
	return true
}

// step is the state of one Event or Timer call.
type step struct {
	e   *Engine
	u   *state.User
	now time.Time
	res Result
	// cause is the messageId of the event being applied, "" on a timer.
	cause string
	loc   *time.Location
	sc    *scratch // nil until a rule is evaluated
}

// scratch holds the CEL variables of one input. CEL keeps a pointer to
// them (they are its activation), so they would escape to the heap if
// built on the stack; the engine pools them instead.
type scratch struct {
	// event is the CEL view of the event being applied, entry the run
	// entry it would start, and vars {event, user, now, entry} over them:
	// aggregates, exits and wake-ups of one event share them.
	event rules.Event
	entry state.Entry
	vars  rules.Vars
	// exit is vars with a pending run's entry, for exit conditions.
	exit rules.Vars
	// runEvent and run are the view and variables of a run's own entry
	// event, for re-checks and steps.
	runEvent rules.Event
	run      rules.Vars
}

func (e *Engine) newStep(u *state.User, now time.Time) *step {
	return &step{e: e, u: u, now: now}
}

// scratch returns the step's scratch, taken from the engine's pool.
func (s *step) scratch() *scratch {
	if s.sc == nil {
		sc, _ := s.e.scratch.Get().(*scratch)
		if sc == nil {
			sc = &scratch{}
		}
		s.sc = sc
	}
	return s.sc
}

// done returns the step's scratch to the pool, holding nothing of the
// user's.
func (s *step) done() {
	if s.sc != nil {
		*s.sc = scratch{}
		s.e.scratch.Put(s.sc)
		s.sc = nil
	}
}

// eventVars sets the scratch's event view, entry and variables for ev.
func (s *step) eventVars(ev *schema.Event) *rules.Vars {
	sc := s.scratch()
	sc.event = rules.EventOf(ev)
	sc.entry = entryOf(&sc.event)
	sc.vars = rules.Vars{Event: &sc.event, User: s.u, Now: s.now, Entry: &sc.entry}
	return &sc.vars
}

// runVars sets the scratch's run view and variables for run, at s.now.
func (s *step) runVars(run *state.Run) *rules.Vars {
	sc := s.scratch()
	sc.runEvent = rules.EventOfEntry(&run.Entry)
	sc.run = rules.Vars{Event: &sc.runEvent, User: s.u, Now: s.now, Entry: &run.Entry}
	return &sc.run
}

func (s *step) location() *time.Location {
	if s.loc == nil {
		s.loc = s.e.location(s.u.TraitZone())
	}
	return s.loc
}

func (e *Engine) location(zone string) *time.Location {
	if zone == "" {
		zone = e.policy.Zone
	}
	if zone == "" || zone == "UTC" {
		return time.UTC
	}
	l, err := e.zones.Load(zone)
	if err != nil {
		// Zones were validated on the way in, against the same database;
		// a zone it lacks (a state written by another build) falls back
		// to the policy's.
		if zone != e.policy.Zone {
			return e.location(e.policy.Zone)
		}
		return time.UTC
	}
	return l
}

func (e *Engine) event(u *state.User, ev *schema.Event) Result {
	s := e.newStep(u, ev.Timestamp)
	s.cause = ev.MessageID
	if s.seen(ev.MessageID) {
		s.res.Duplicate = true
		return s.res
	}
	if ev.Type == schema.TypeDelete {
		s.res.Erase = true
		return s.res
	}
	if u.Key == "" {
		u.Key = ev.UserKey()
	}
	s.pruneAggregates()
	s.apply(ev)
	if on := e.pack.On(ev.Key()); on != nil {
		vars := s.eventVars(ev)
		s.feedAggregates(on.Fed, vars)
		s.exits(on.Exits, vars.Event)
		s.wake(on.Woken, vars)
		s.done()
	}
	u.Enforce(e.limits, &s.res.Evictions)
	return s.res
}

func (e *Engine) timer(u *state.User, now time.Time) Result {
	s := e.newStep(u, now)
	s.pruneAggregates()
	// Fire every run due by now, earliest first; firing can schedule later
	// timers but never one at or before now.
	for {
		t, run := s.nextDue()
		if run == nil || run.Due.After(now) {
			break
		}
		s.now = run.Due
		// Rules on this timer read the score as of its due time.
		s.scoreAt(s.now)
		s.fireTimer(t, run)
	}
	s.done()
	u.Enforce(e.limits, &s.res.Evictions)
	return s.res
}

// nextDue returns the run with the earliest timer (ties by trigger name).
// It walks the user's trigger states, a few, not the pack's triggers.
func (s *step) nextDue() (*rules.Trigger, *state.Run) {
	var bestT *rules.Trigger
	var best *state.Run
	for name, ts := range s.u.Triggers {
		if ts.Run == nil {
			continue
		}
		t := s.e.pack.Trigger(name)
		if t == nil {
			continue // not reconciled yet: Reconcile drops it
		}
		if best == nil || ts.Run.Due.Before(best.Due) || (ts.Run.Due.Equal(best.Due) && name < bestT.Name) {
			bestT, best = t, ts.Run
		}
	}
	return bestT, best
}

// seen records id and reports whether it was already there.
func (s *step) seen(id string) bool {
	// FNV-1a, inline: no hasher allocation on the hot path.
	sum := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		sum ^= uint64(id[i])
		sum *= 1099511628211
	}
	if slices.Contains(s.u.SeenIDs, sum) {
		return true
	}
	s.u.SeenIDs = append(s.u.SeenIDs, sum)
	return false
}

func (s *step) fail(err error) {
	if err != nil {
		s.res.Errors = append(s.res.Errors, err)
	}
}
