package engine

import (
	"strconv"
	"time"

	"github.com/microtrigger/microtrigger/processor/policy"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/schema"
)

func (s *step) triggerState(name string) *state.Trigger {
	if s.u.Triggers == nil {
		s.u.Triggers = map[string]*state.Trigger{}
	}
	ts := s.u.Triggers[name]
	if ts == nil {
		ts = &state.Trigger{}
		s.u.Triggers[name] = ts
	}
	return ts
}

func (s *step) cond(p *rules.Program, vars *rules.Vars) bool {
	if p == nil {
		return true
	}
	s.res.Evaluated++
	ok, err := p.Bool(vars)
	s.fail(err)
	return ok
}

// exits cancels the pending runs the event exits.
func (s *step) exits(exits []rules.KeyExit, ev *rules.Event) {
	for _, ke := range exits {
		t, x := ke.Trigger, ke.Exit
		ts := s.u.Triggers[t.Name]
		if ts == nil || ts.Run == nil {
			continue
		}
		run := ts.Run
		if x.When != nil {
			sc := s.scratch()
			sc.exit = rules.Vars{Event: ev, User: s.u, Now: s.now, Entry: &run.Entry}
			if !s.cond(x.When, &sc.exit) {
				continue
			}
		}
		s.suppress(t, run, run.Step, schema.SuppressExited, time.Time{})
		s.endRun(ts)
	}
}

// wake evaluates the triggers the event wakes, in name order. vars are
// the event's (step.eventVars).
func (s *step) wake(woken []*rules.Trigger, vars *rules.Vars) {
	entry := vars.Entry
	for _, t := range woken {
		ts := s.u.Triggers[t.Name]
		if ts != nil && ts.Run != nil {
			// Already running: a restartable wait starts over.
			if t.Restart && ts.Run.Phase == state.PhaseWait && s.cond(t.When, vars) {
				ts.Run.Entry = *entry
				ts.Run.Started = s.now
				ts.Run.Due = s.now.Add(t.WaitFor(ts.Run.Variant))
			}
			continue
		}
		if !s.cond(t.When, vars) {
			continue
		}
		if ts == nil {
			ts = s.triggerState(t.Name)
		}
		if !t.Reentry && ts.Entered {
			continue
		}
		if policy.Cooling(ts, t.Cooldown, s.now) {
			// One record per cooldown: the events that keep the condition
			// true while it lasts are not each a new suppression. A record
			// made at the very instant the cooldown began belongs to it.
			if ts.CooldownNoted.Before(ts.LastEnd) {
				ts.CooldownNoted = s.now
				s.suppress(t, &state.Run{Entry: *entry}, 0, schema.SuppressCooldown, time.Time{})
			}
			continue
		}
		ts.Runs++
		run := &state.Run{Seq: ts.Runs, Started: s.now, Entry: *entry, Last: s.now}
		run.Variant, _ = policy.Assign(s.u.Key, t.Name, 0, variantsOf(t))
		ts.Run = run
		// A variant may change the wait, the steps' delays and the expiry.
		if w := t.WaitFor(run.Variant); w > 0 {
			run.Phase = state.PhaseWait
			run.Due = s.now.Add(w)
			continue
		}
		s.schedule(t, ts, 0)
	}
}

func variantsOf(t *rules.Trigger) []policy.Variant {
	if len(t.Variants) == 0 {
		return nil
	}
	out := make([]policy.Variant, len(t.Variants))
	for i, v := range t.Variants {
		out[i] = policy.Variant{Name: v.Name, Weight: v.Weight}
	}
	return out
}

// schedule makes step i of the run the next one, due its delay after now;
// a step due now fires at once.
func (s *step) schedule(t *rules.Trigger, ts *state.Trigger, i int) {
	run := ts.Run
	for {
		if i >= len(t.Steps) {
			s.endRun(ts)
			return
		}
		run.Phase = state.PhaseStep
		run.Step = i
		run.Deferred = false
		run.Last = s.now
		run.Due = s.now.Add(t.DelayFor(run.Variant, i))
		if run.Due.After(s.now) {
			return
		}
		next, done := s.fireStep(t, ts)
		if done {
			return
		}
		i = next
	}
}

// fireTimer handles a run whose timer came due at s.now.
func (s *step) fireTimer(t *rules.Trigger, run *state.Run) {
	ts := s.u.Triggers[t.Name]
	if run.Phase == state.PhaseWait {
		check := t.Recheck
		if check == nil {
			check = t.When
		}
		if check != nil && !s.cond(check, s.runVars(run)) {
			// The condition no longer holds: the run ends without a send.
			ts.Run = nil
			return
		}
		s.schedule(t, ts, 0)
		return
	}
	next, done := s.fireStep(t, ts)
	if !done {
		s.schedule(t, ts, next)
	}
}

// fireStep resolves the run's current step at s.now: it is sent, skipped,
// suppressed or deferred. It returns the next step to schedule, or done when
// the run is over or waits (deferred).
func (s *step) fireStep(t *rules.Trigger, ts *state.Trigger) (next int, done bool) {
	run := ts.Run
	i := run.Step
	st := &t.Steps[i]
	vars := s.runVars(run)
	first := run.Sent == 0 && !run.Deferred

	if !run.Deferred && !s.cond(st.When, vars) {
		return i + 1, false // skipped
	}
	if reason := policy.Reachable(s.u, &s.e.policy); reason != "" {
		s.suppress(t, run, i, reason, time.Time{})
		s.endRun(ts)
		return 0, true
	}
	if first {
		if _, held := policy.Assign(s.u.Key, t.Name, t.Holdout, variantsOf(t)); held {
			s.suppress(t, run, i, schema.SuppressHoldout, time.Time{})
			// A held-out user counts as treated: cooldown applies, so the
			// holdout group stays comparable with the sent group.
			ts.Run = nil
			ts.LastEnd = s.now
			ts.Entered = true
			return 0, true
		}
		if s.inOtherSequence(t) {
			s.suppress(t, run, i, schema.SuppressInOtherSequence, time.Time{})
			ts.Run = nil
			return 0, true
		}
	}
	if q := s.e.policy.Quiet; q != nil && t.QuietHours {
		if until, quiet := q.Until(s.now, s.location()); quiet {
			s.suppress(t, run, i, schema.SuppressQuietHours, until)
			run.Due = until
			run.Deferred = true
			return 0, true
		}
	}
	if w := st.SendWindow; w != nil {
		if opens, outside := w.Next(s.now, s.location()); outside {
			s.suppress(t, run, i, schema.SuppressSendWindow, opens)
			run.Due = opens
			run.Deferred = true
			return 0, true
		}
	}
	run.Deferred = false
	if reason, cap := policy.Capacity(&s.e.policy, s.u.Sends, s.reserved(t, ""), s.now, s.location()); reason != "" {
		s.suppress(t, run, i, reason, time.Time{})
		s.res.Suppressions[len(s.res.Suppressions)-1].Cap = cap
		return i + 1, false
	}
	if cap := s.categoryCap(t); cap != nil {
		s.suppress(t, run, i, schema.SuppressFrequencyCap, time.Time{})
		s.res.Suppressions[len(s.res.Suppressions)-1].Cap = cap.Name
		return i + 1, false
	}
	s.emit(t, ts, i, vars)
	return i + 1, false
}

// inOtherSequence reports whether another trigger's sequence is under way
// for this user (it has sent and has steps left) and this one does not
// outrank it by priority.
func (s *step) inOtherSequence(t *rules.Trigger) bool {
	for name, ts := range s.u.Triggers {
		if name == t.Name || ts.Run == nil || ts.Run.Sent == 0 || ts.Run.Phase != state.PhaseStep {
			continue
		}
		if o := s.e.pack.Trigger(name); o != nil && t.Priority <= o.Priority {
			return true
		}
	}
	return false
}

// categoryCap returns the first of the pack's caps on t's category that
// leaves no room for a send at s.now, or nil.
func (s *step) categoryCap(t *rules.Trigger) *policy.Cap {
	if t.Category == "" {
		return nil
	}
	var sent, reserved []time.Time
	for ci := range s.e.policy.Caps {
		c := &s.e.policy.Caps[ci]
		if c.Category != t.Category {
			continue
		}
		if sent == nil {
			sent = []time.Time{}
			for _, x := range s.u.Sends {
				if o := s.e.pack.Trigger(x.Trigger); o != nil && o.Category == t.Category {
					sent = append(sent, x.At)
				}
			}
			reserved = s.reserved(t, t.Category)
		}
		if c.Full(sent, reserved, s.now) {
			return c
		}
	}
	return nil
}

// reserved lists when the user's other pending runs that outrank t (of
// category, when not "") are expected to send: a lower-ranked send must
// leave the cap room for them. The order is of no consequence (the caps
// count them).
func (s *step) reserved(t *rules.Trigger, category string) []time.Time {
	me := rankOf(t)
	var out []time.Time
	for name, ts := range s.u.Triggers {
		if name == t.Name || ts.Run == nil {
			continue
		}
		o := s.e.pack.Trigger(name)
		if o == nil || !rankOf(o).Before(me) || (category != "" && o.Category != category) {
			continue
		}
		at := ts.Run.Due
		if ts.Run.Phase == state.PhaseWait && len(o.Steps) > 0 {
			at = at.Add(o.DelayFor(ts.Run.Variant, 0))
		}
		if at.Before(s.now) {
			at = s.now
		}
		out = append(out, at)
	}
	return out
}

func rankOf(t *rules.Trigger) policy.Rank {
	return policy.Rank{Intent: policy.IntentRank(t.Intent), Priority: t.Priority, Name: t.Name}
}

// endRun closes the run; a run that sent starts the cooldown.
func (s *step) endRun(ts *state.Trigger) {
	if ts.Run != nil && ts.Run.Sent > 0 {
		ts.LastEnd = s.now
	}
	ts.Run = nil
}

func (s *step) template(t *rules.Trigger, run *state.Run, i int) (string, *rules.Variant) {
	tmpl := t.Steps[i].Template
	for vi := range t.Variants {
		v := &t.Variants[vi]
		if v.Name == run.Variant {
			if v.Template != "" {
				tmpl = v.Template
			}
			return tmpl, v
		}
	}
	return tmpl, nil
}

func (s *step) emit(t *rules.Trigger, ts *state.Trigger, i int, vars *rules.Vars) {
	run := ts.Run
	tmpl, variant := s.template(t, run, i)
	data := map[string]any{}
	s.merge(data, t.Data, vars)
	s.merge(data, t.Steps[i].Data, vars)
	if variant != nil {
		s.merge(data, variant.Data, vars)
	}
	cause := s.cause
	if run.Entry.ID != s.cause {
		// Sent by a timer: name the timer by its run's entry event and step.
		cause = "timer:" + run.Entry.ID + ":" + strconv.Itoa(i+1)
	}
	c := schema.SendCommand{
		UserID:   s.u.Key,
		Email:    s.u.Email(),
		Trigger:  t.Name,
		Step:     i + 1,
		Template: tmpl,
		Variant:  run.Variant,
		Intent:   t.Intent,
		SendAt:   s.now,
		Data:     data,
		Cause:    cause,
	}
	// A logical time like send_at, so live and replay agree on it. A
	// loaded pack always gives a window; without one the sink derives it.
	if w := t.ExpiryFor(run.Variant); w > 0 {
		c.ExpiresAt = s.now.Add(w)
	}
	c.ID = schema.CommandID(c.UserID, c.Trigger, c.Step, c.Cause)
	s.res.Commands = append(s.res.Commands, c)
	s.u.Sends = append(s.u.Sends, state.Send{At: s.now, Trigger: t.Name, Step: i + 1})
	s.dropOldSends()
	run.Sent++
	ts.Sent++
	ts.Entered = true
}

// dropOldSends forgets sends older than any cap can count (8 days covers
// the longest ISO week in any zone).
func (s *step) dropOldSends() {
	cut := s.now.Add(-8 * 24 * time.Hour)
	i := 0
	for i < len(s.u.Sends) && s.u.Sends[i].At.Before(cut) {
		i++
	}
	if i > 0 {
		s.u.Sends = append(s.u.Sends[:0], s.u.Sends[i:]...)
	}
}

func (s *step) merge(dst map[string]any, fields []rules.DataField, vars *rules.Vars) {
	for _, f := range fields {
		v, err := f.Expr.Value(vars)
		if err != nil {
			s.fail(err)
			continue
		}
		dst[f.Name] = v
	}
}

func (s *step) suppress(t *rules.Trigger, run *state.Run, i int, reason schema.SuppressReason, until time.Time) {
	if i >= len(t.Steps) {
		i = len(t.Steps) - 1
	}
	tmpl, _ := s.template(t, run, i)
	s.res.Suppressions = append(s.res.Suppressions, schema.Suppression{
		UserID: s.u.Key, Trigger: t.Name, Step: i + 1, Template: tmpl, Variant: run.Variant,
		Reason: reason, At: s.now, Until: until,
	})
}
