package report

import (
	"sort"
	"strings"
	"time"

	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/schema"
)

// Version is the layout version of report.json.
const Version = 1

// Outcome is what one rule pack produced over the input.
type Outcome struct {
	Rules        string // the rule directory, as the report names it
	Pack         *rules.Pack
	Commands     []schema.SendCommand
	Suppressions []schema.Suppression
	Processing   Processing
}

// Conversions are the input's conversion events.
type Conversions struct {
	Event  string
	Window time.Duration
	// ByUser holds each user's conversion times, sorted, by user key.
	ByUser map[string][]time.Time
	Count  int64
}

// Source is everything Build needs.
type Source struct {
	Input       Input
	Range       Range
	End         time.Time // where the replay stopped; zero when nothing was read
	Conversions Conversions
	A           Outcome
	B           *Outcome // the pack compared with A, if any
}

// Build computes the report.
func Build(src *Source) *Report {
	r := &Report{
		Version: Version,
		Input:   src.Input,
		Range:   src.Range,
		Conversion: Conversion{
			Event:         src.Conversions.Event,
			Window:        rules.FormatDuration(src.Conversions.Window),
			WindowSeconds: src.Conversions.Window.Seconds(),
			Interval:      IntervalMethod,
			Events:        src.Conversions.Count,
		},
	}
	if r.Input.RefusedByReason == nil {
		r.Input.RefusedByReason = map[string]int64{}
	}
	if r.Input.Refusals == nil {
		r.Input.Refusals = []Refusal{}
	}
	a := buildRun(&src.A, &src.Conversions, src.End)
	r.Run = a.run
	if src.B != nil {
		b := buildRun(src.B, &src.Conversions, src.End)
		r.Compare = compare(a, b)
	}
	return r
}

// built is a Run with what compare needs besides.
type built struct {
	run   Run
	ids   map[string]map[string]bool // trigger → command ids
	users map[string]bool            // every user sent to
}

// runKey identifies one trigger run of a user: its entry event.
type runKey struct {
	user, entry string
}

type runAcc struct {
	user    string
	variant string
	send    time.Time // the first send, or the holdout's would-be send
}

type countsAcc struct {
	c          *Counts
	users      map[string]bool
	sent, held []*runAcc
}

type triggerAcc struct {
	t        *Trigger
	all      countsAcc
	variants map[string]*countsAcc
	runs     map[runKey]*runAcc
	fired    map[string]bool
	ids      map[string]bool
}

func newCounts(c *Counts, steps int) countsAcc {
	c.SendsByStep = make([]int64, steps)
	c.Suppressed = map[string]int64{}
	return countsAcc{c: c, users: map[string]bool{}}
}

func buildRun(o *Outcome, conv *Conversions, end time.Time) *built {
	b := &built{
		run: Run{
			Rules:      o.Rules,
			Processing: o.Processing,
			Totals:     Totals{Suppressed: map[string]int64{}},
		},
		ids:   map[string]map[string]bool{},
		users: map[string]bool{},
	}
	accs := map[string]*triggerAcc{}
	var order []*triggerAcc
	get := func(name string) *triggerAcc {
		if a := accs[name]; a != nil {
			return a
		}
		t := &Trigger{Name: name, Timing: Timing{Delays: []string{}}}
		steps := 0
		var variants []string
		rt := o.Pack.Trigger(name)
		if rt != nil {
			t.Intent, t.Priority, t.HoldoutShare = rt.Intent, rt.Priority, round6(rt.Holdout)
			steps = len(rt.Steps)
			t.Timing = timingOf(rt, "")
			for _, v := range rt.Variants {
				variants = append(variants, v.Name)
			}
		}
		t.Steps = steps
		a := &triggerAcc{t: t, variants: map[string]*countsAcc{}, runs: map[runKey]*runAcc{}, fired: map[string]bool{}, ids: map[string]bool{}}
		a.all = newCounts(&t.Counts, steps)
		t.Variants = make([]Variant, len(variants))
		for i, v := range variants {
			t.Variants[i].Name = v
			t.Variants[i].Timing = timingOf(rt, v)
			ca := newCounts(&t.Variants[i].Counts, steps)
			a.variants[v] = &ca
		}
		accs[name] = a
		order = append(order, a)
		return a
	}
	for _, t := range o.Pack.Triggers {
		get(t.Name)
	}

	days := map[string]map[string]int64{}
	for i := range o.Commands {
		c := &o.Commands[i]
		a := get(c.Trigger)
		a.ids[c.ID] = true
		a.fired[c.UserID] = true
		b.users[c.UserID] = true
		for _, ca := range a.countsFor(c.Variant) {
			ca.c.Sends++
			for len(ca.c.SendsByStep) < c.Step {
				ca.c.SendsByStep = append(ca.c.SendsByStep, 0)
			}
			if c.Step >= 1 {
				ca.c.SendsByStep[c.Step-1]++
			}
			ca.users[c.UserID] = true
		}
		k := runKey{c.UserID, entryOf(c.Cause)}
		if r := a.runs[k]; r == nil {
			r = &runAcc{user: c.UserID, variant: c.Variant, send: c.SendAt}
			a.runs[k] = r
			for _, ca := range a.countsFor(c.Variant) {
				ca.sent = append(ca.sent, r)
			}
		} else if c.SendAt.Before(r.send) {
			r.send = c.SendAt
		}
		day := c.SendAt.UTC().Format(time.DateOnly)
		if days[day] == nil {
			days[day] = map[string]int64{}
		}
		days[day][c.Trigger]++
		b.run.Totals.Sends++
	}
	for i := range o.Suppressions {
		s := &o.Suppressions[i]
		a := get(s.Trigger)
		reason := string(s.Reason)
		for _, ca := range a.countsFor(s.Variant) {
			ca.c.Suppressed[reason]++
			if s.Reason.Deferral() {
				ca.c.Deferred++
			} else {
				ca.c.SuppressedTotal++
			}
		}
		b.run.Totals.Suppressed[reason]++
		if s.Reason.Deferral() {
			b.run.Totals.Deferred++
		} else {
			b.run.Totals.SuppressedTotal++
		}
		switch s.Reason {
		case schema.SuppressExited, schema.SuppressCooldown:
		default:
			a.fired[s.UserID] = true
		}
		if s.Reason == schema.SuppressHoldout {
			// The whole holdout group is every variant's control.
			a.all.held = append(a.all.held, &runAcc{user: s.UserID, variant: s.Variant, send: s.At})
		}
	}

	var ttc []float64
	for _, a := range order {
		converted := map[string]bool{}
		secs := a.all.finish(conv, end, nil, converted)
		ttc = append(ttc, secs...)
		for _, v := range a.t.Variants {
			ca := a.variants[v.Name]
			ca.finish(conv, end, a.all.held, nil)
		}
		a.t.Funnel = Funnel{Fired: int64(len(a.fired)), Emailed: int64(len(a.all.users)), Converted: int64(len(converted))}
		b.run.Totals.Converted += a.t.Sent.Converted
		b.run.Triggers = append(b.run.Triggers, *a.t)
		b.ids[a.t.Name] = a.ids
	}
	sort.Slice(b.run.Triggers, func(i, j int) bool { return b.run.Triggers[i].Name < b.run.Triggers[j].Name })
	if b.run.Triggers == nil {
		b.run.Triggers = []Trigger{}
	}
	b.run.Totals.Users = int64(len(b.users))
	b.run.SendsPerDay = sendsPerDay(days)
	b.run.TimeToConversion = histogram(ttc, conv.Window)
	return b
}

// timingOf is when a run of t in the named variant sends, as the engine
// times it (rules.Trigger.WaitFor, DelayFor, ExpiryFor).
func timingOf(t *rules.Trigger, variant string) Timing {
	tm := Timing{
		Wait:        rules.FormatDuration(t.WaitFor(variant)),
		Delays:      make([]string, len(t.Steps)),
		ExpireAfter: rules.FormatDuration(t.ExpiryFor(variant)),
	}
	for i := range t.Steps {
		tm.Delays[i] = rules.FormatDuration(t.DelayFor(variant, i))
	}
	return tm
}

// countsFor returns the accumulators a record of this variant adds to.
func (a *triggerAcc) countsFor(variant string) []*countsAcc {
	if v := a.variants[variant]; v != nil {
		return []*countsAcc{&a.all, v}
	}
	return []*countsAcc{&a.all}
}

// finish computes the groups and the effect. held, when non-nil, replaces
// the accumulator's own holdout runs. It returns the times to conversion
// of the converted sent runs and adds their users to converted.
func (ca *countsAcc) finish(conv *Conversions, end time.Time, held []*runAcc, converted map[string]bool) []float64 {
	if held == nil {
		held = ca.held
	}
	ca.c.Users = int64(len(ca.users))
	var secs []float64
	ca.c.Sent, secs = group(ca.sent, conv, end, converted)
	ca.c.Holdout, _ = group(held, conv, end, nil)
	if diff, lo, hi, ok := Newcombe(ca.c.Sent.Converted, ca.c.Sent.Runs, ca.c.Holdout.Converted, ca.c.Holdout.Runs); ok {
		ca.c.Effect = &Effect{Diff: round6(diff), Low: round6(lo), High: round6(hi)}
	}
	return secs
}

func group(runs []*runAcc, conv *Conversions, end time.Time, converted map[string]bool) (Group, []float64) {
	g := Group{Runs: int64(len(runs))}
	users := map[string]bool{}
	var secs []float64
	for _, r := range runs {
		users[r.user] = true
		limit := r.send.Add(conv.Window)
		if limit.After(end) {
			g.Truncated++
		}
		if c, ok := firstAfter(conv.ByUser[r.user], r.send, limit); ok {
			g.Converted++
			secs = append(secs, c.Sub(r.send).Seconds())
			if converted != nil {
				converted[r.user] = true
			}
		}
	}
	g.Users = int64(len(users))
	if g.Runs > 0 {
		rate := round6(float64(g.Converted) / float64(g.Runs))
		g.Rate = &rate
	}
	g.TimeToConversion = summarise(secs)
	return g, secs
}

// firstAfter returns the first time in sorted ts after from and at or
// before to.
func firstAfter(ts []time.Time, from, to time.Time) (time.Time, bool) {
	i := sort.Search(len(ts), func(i int) bool { return ts[i].After(from) })
	if i < len(ts) && !ts[i].After(to) {
		return ts[i], true
	}
	return time.Time{}, false
}

// entryOf returns the entry event of the run that sent a command: the
// cause itself for a send made while applying an event (the engine only
// names an event as the cause when it is the run's entry), and the entry
// named inside "timer:<entry>:<step>" for a send made by a timer.
func entryOf(cause string) string {
	if rest, ok := strings.CutPrefix(cause, "timer:"); ok {
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			return rest[:i]
		}
		return rest
	}
	return cause
}

func sendsPerDay(days map[string]map[string]int64) []Day {
	out := []Day{}
	if len(days) == 0 {
		return out
	}
	var keys []string
	for d := range days {
		keys = append(keys, d)
	}
	sort.Strings(keys)
	first, _ := time.Parse(time.DateOnly, keys[0])
	last, _ := time.Parse(time.DateOnly, keys[len(keys)-1])
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		key := d.Format(time.DateOnly)
		day := Day{Date: key, Sends: map[string]int64{}}
		for t, n := range days[key] {
			day.Sends[t] = n
			day.Total += n
		}
		out = append(out, day)
	}
	return out
}

// histogramBound is the upper bound of a time-to-conversion bucket.
type histogramBound struct {
	label string
	d     time.Duration
}

// histogramBounds are the upper bounds of the time-to-conversion buckets.
func histogramBounds() []histogramBound {
	return []histogramBound{
		{"≤ 15m", 15 * time.Minute},
		{"≤ 1h", time.Hour},
		{"≤ 6h", 6 * time.Hour},
		{"≤ 1d", 24 * time.Hour},
		{"≤ 2d", 48 * time.Hour},
		{"≤ 4d", 96 * time.Hour},
		{"≤ 7d", 7 * 24 * time.Hour},
		{"≤ 14d", 14 * 24 * time.Hour},
		{"≤ 30d", 30 * 24 * time.Hour},
	}
}

func histogram(secs []float64, window time.Duration) []Bucket {
	var out []Bucket
	for _, b := range histogramBounds() {
		if b.d >= window {
			break
		}
		out = append(out, Bucket{Label: b.label, UpTo: b.d.Seconds()})
	}
	out = append(out, Bucket{Label: "≤ " + rules.FormatDuration(window), UpTo: window.Seconds()})
	for _, s := range secs {
		for i := range out {
			if s <= out[i].UpTo || i == len(out)-1 {
				out[i].Count++
				break
			}
		}
	}
	return out
}

func compare(a, b *built) *Comparison {
	c := &Comparison{Run: b.run}
	c.Totals = TotalsDiff{
		Sends:      delta(a.run.Totals.Sends, b.run.Totals.Sends),
		Users:      delta(a.run.Totals.Users, b.run.Totals.Users),
		Converted:  delta(a.run.Totals.Converted, b.run.Totals.Converted),
		Suppressed: deltas(a.run.Totals.Suppressed, b.run.Totals.Suppressed),
	}
	byName := func(ts []Trigger) map[string]*Trigger {
		m := map[string]*Trigger{}
		for i := range ts {
			m[ts[i].Name] = &ts[i]
		}
		return m
	}
	ta, tb := byName(a.run.Triggers), byName(b.run.Triggers)
	names := map[string]bool{}
	for n := range ta {
		names[n] = true
	}
	for n := range tb {
		names[n] = true
	}
	var sorted []string
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	empty := &Trigger{Counts: Counts{Suppressed: map[string]int64{}}}
	for _, n := range sorted {
		x, y := ta[n], tb[n]
		d := TriggerDiff{Name: n, InA: x != nil, InB: y != nil}
		if x == nil {
			x = empty
		}
		if y == nil {
			y = empty
		}
		d.Sends = delta(x.Sends, y.Sends)
		d.Users = delta(x.Users, y.Users)
		d.Converted = delta(x.Sent.Converted, y.Sent.Converted)
		d.Suppressed = deltas(x.Suppressed, y.Suppressed)
		d.Rate = RateDelta{A: x.Sent.Rate, B: y.Sent.Rate}
		if x.Sent.Rate != nil && y.Sent.Rate != nil {
			v := round6(*y.Sent.Rate - *x.Sent.Rate)
			d.Rate.Delta = &v
		}
		d.Commands = overlap(a.ids[n], b.ids[n])
		c.Totals.Commands.Same += d.Commands.Same
		c.Totals.Commands.OnlyA += d.Commands.OnlyA
		c.Totals.Commands.OnlyB += d.Commands.OnlyB
		c.Triggers = append(c.Triggers, d)
	}
	if c.Triggers == nil {
		c.Triggers = []TriggerDiff{}
	}
	return c
}

func delta(a, b int64) Delta { return Delta{A: a, B: b, Delta: b - a} }

func deltas(a, b map[string]int64) map[string]Delta {
	out := map[string]Delta{}
	for k, v := range a {
		out[k] = delta(v, b[k])
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			out[k] = delta(0, v)
		}
	}
	return out
}

func overlap(a, b map[string]bool) Overlap {
	var o Overlap
	for id := range a {
		if b[id] {
			o.Same++
		} else {
			o.OnlyA++
		}
	}
	for id := range b {
		if !a[id] {
			o.OnlyB++
		}
	}
	return o
}
