package rules

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/microtrigger/microtrigger/internal/yamlpos"
	"github.com/microtrigger/microtrigger/processor/policy"
	"github.com/microtrigger/microtrigger/schema"
)

// Pos is a position in a rule file.
type Pos = yamlpos.Pos

// Error is one problem in a rule pack, at file:line:col.
type Error = yamlpos.Error

// ErrorList is every problem found in a pack, sorted by position.
type ErrorList = yamlpos.ErrorList

// Pack is a loaded, checked and compiled rule pack.
type Pack struct {
	Policy     policy.Config
	Triggers   []*Trigger   // sorted by name
	Aggregates []*Aggregate // sorted by name
	// Files are the YAML files the pack came from.
	Files []string

	byName     map[string]*Trigger
	aggByName  map[string]*Aggregate
	wake       map[string][]*Trigger   // event key → triggers it wakes
	wakeAll    []*Trigger              // triggers woken by every event ("*")
	exits      map[string][]exitRef    // event key → exit conditions on it
	aggsByKey  map[string][]*Aggregate // event key → aggregates it feeds
	aggsAll    []*Aggregate
	keysOfRule map[string]bool // every event key any rule reads
	// on is what each key any rule names runs, built from the above so
	// that an event looks its rules up once; onAny is what every other
	// key runs (nil without "*" rules).
	on    map[string]*KeyRules
	onAny *KeyRules
}

// KeyRules are what an event of one key runs: the aggregates it may feed,
// the exit conditions on it and the triggers it wakes, in name order. The
// slices must not be modified.
type KeyRules struct {
	Fed   []*Aggregate
	Exits []KeyExit
	Woken []*Trigger
}

// KeyExit is an exit condition on a key, with its trigger.
type KeyExit struct {
	Trigger *Trigger
	Exit    *Exit
}

// AggKind is what an aggregate computes.
type AggKind string

// Aggregate kinds.
const (
	AggCount AggKind = "count"
	AggSum   AggKind = "sum"
	AggMax   AggKind = "max"
)

// Aggregate is a declared windowed aggregate: count, sum or max of Value
// over the events named in On that pass When, within Window, optionally
// grouped By a key. Rules read it as user.agg(name) or user.agg(name, key).
type Aggregate struct {
	Name   string
	Pos    Pos
	On     []string
	Kind   AggKind
	Window time.Duration
	When   *Program // nil: every event of On
	Value  *Program // sum and max
	By     *Program // nil: one group
}

// IntentWindow is the latest a trigger's first email may land after it
// fires, and how long any of its emails stays worth sending after its
// send_at unless the trigger sets expire_after: schema.IntentWindow.
func IntentWindow(intent string) time.Duration { return schema.IntentWindow(intent) }

// Expiry is how long after its send_at an email of t may still go out:
// ExpireAfter, or the intent's window.
func (t *Trigger) Expiry() time.Duration {
	if t.ExpireAfter > 0 {
		return t.ExpireAfter
	}
	return IntentWindow(t.Intent)
}

// Variant returns the variant of that name, or nil ("", or a name the
// pack no longer has).
func (t *Trigger) Variant(name string) *Variant {
	if name == "" {
		return nil
	}
	for i := range t.Variants {
		if t.Variants[i].Name == name {
			return &t.Variants[i]
		}
	}
	return nil
}

// waits reports whether a run of t, in any variant, waits before its
// first step (and so checks again then).
func (t *Trigger) waits() bool {
	if t.Wait > 0 {
		return true
	}
	for i := range t.Variants {
		if w := t.Variants[i].Wait; w != nil && *w > 0 {
			return true
		}
	}
	return false
}

// WaitFor is the wait of a run in the named variant: the variant's, or
// the trigger's.
func (t *Trigger) WaitFor(variant string) time.Duration {
	if v := t.Variant(variant); v != nil && v.Wait != nil {
		return *v.Wait
	}
	return t.Wait
}

// DelayFor is the delay of step i of a run in the named variant.
func (t *Trigger) DelayFor(variant string, i int) time.Duration {
	if v := t.Variant(variant); v != nil && i < len(v.Delays) {
		return v.Delays[i]
	}
	return t.Steps[i].Delay
}

// ExpiryFor is Expiry for a run in the named variant.
func (t *Trigger) ExpiryFor(variant string) time.Duration {
	if v := t.Variant(variant); v != nil && v.ExpireAfter > 0 {
		return v.ExpireAfter
	}
	return t.Expiry()
}

// Trigger is one compiled trigger.
type Trigger struct {
	Name        string
	Pos         Pos
	Description string
	Intent      string
	Priority    int
	On          []string
	When        *Program // nil: always
	Wait        time.Duration
	Recheck     *Program // after Wait; nil: When again
	Restart     bool
	Exits       []Exit
	Cooldown    time.Duration
	// ExpireAfter is how long after its send_at an email of this trigger
	// may still go out; 0: the intent's window ([IntentWindow]).
	ExpireAfter time.Duration
	Reentry     bool
	Holdout     float64
	Variants    []Variant
	Steps       []Step
	Data        []DataField // merged under step and variant data
	QuietHours  bool        // honour quiet hours (default true)
	// Category names the trigger's kind of email ("promo") for the
	// policy's caps per category; "" for none.
	Category string
}

// Exit cancels a trigger's pending run when an event of key Event arrives
// and When (if any) holds.
type Exit struct {
	Event string
	When  *Program
}

type exitRef struct {
	trigger *Trigger
	exit    *Exit
}

// Variant is one arm of an A/B test. Template and Data override the
// steps'; Wait, Delays and ExpireAfter the trigger's timing, so that arms
// may differ in when they send ("1 h vs 4 h after abandonment").
type Variant struct {
	Name     string
	Weight   float64
	Template string
	Data     []DataField
	// Wait replaces the trigger's wait when non-nil (0: none).
	Wait *time.Duration
	// Delays, when non-nil, has one delay per step of the trigger.
	Delays []time.Duration
	// ExpireAfter replaces the trigger's expiry when positive.
	ExpireAfter time.Duration
}

// Step is one email of a sequence.
type Step struct {
	Template string
	Delay    time.Duration // after the previous step (or the firing)
	When     *Program      // nil: always
	Data     []DataField
	// SendWindow, when set, is when the step may send in the user's
	// local time (the step's own, else the trigger's); a send outside it
	// is deferred to its next opening.
	SendWindow *policy.SendWindow

	window *yamlpos.Node // the step's send_window, while compiling
}

// DataField is one merge-data entry: a name and the CEL expression giving it.
type DataField struct {
	Name string
	Expr *Program
}

// Program is one compiled CEL expression with its source and position.
type Program struct {
	Source string
	Pos    Pos
	prg    cel.Program
	fast   *fast // what Go computes without CEL; nil: nothing
	// events are the uses of the variable event, for the checks of where
	// it is defined (eventvar.go); load time only.
	events []eventUse
}

// index sorts the pack and builds its lookup tables.
func (p *Pack) index() {
	sort.Slice(p.Triggers, func(i, j int) bool { return p.Triggers[i].Name < p.Triggers[j].Name })
	sort.Slice(p.Aggregates, func(i, j int) bool { return p.Aggregates[i].Name < p.Aggregates[j].Name })
	p.byName = map[string]*Trigger{}
	p.aggByName = map[string]*Aggregate{}
	p.wake = map[string][]*Trigger{}
	p.wakeAll = nil
	p.exits = map[string][]exitRef{}
	p.aggsByKey = map[string][]*Aggregate{}
	p.aggsAll = nil
	p.keysOfRule = map[string]bool{}
	for _, a := range p.Aggregates {
		p.aggByName[a.Name] = a
		for _, k := range a.On {
			if k == "*" {
				p.aggsAll = append(p.aggsAll, a)
				continue
			}
			p.aggsByKey[k] = append(p.aggsByKey[k], a)
			p.keysOfRule[k] = true
		}
	}
	for _, t := range p.Triggers {
		p.byName[t.Name] = t
		for _, k := range t.On {
			if k == "*" {
				p.wakeAll = append(p.wakeAll, t)
				continue
			}
			p.wake[k] = append(p.wake[k], t)
			p.keysOfRule[k] = true
		}
		for i := range t.Exits {
			x := &t.Exits[i]
			p.exits[x.Event] = append(p.exits[x.Event], exitRef{t, x})
			p.keysOfRule[x.Event] = true
		}
	}
	p.on = make(map[string]*KeyRules, len(p.keysOfRule))
	for k := range p.keysOfRule {
		p.on[k] = p.keyRules(k)
	}
	p.onAny = nil
	if len(p.wakeAll) > 0 || len(p.aggsAll) > 0 {
		p.onAny = p.keyRules("")
	}
}

// keyRules gathers what an event of key runs, in the order evaluation
// takes: aggregates of the key then those of every key, exits, and the
// woken triggers by name.
func (p *Pack) keyRules(key string) *KeyRules {
	r := &KeyRules{}
	if len(p.aggsAll) == 0 {
		r.Fed = p.aggsByKey[key]
	} else {
		r.Fed = append(append([]*Aggregate(nil), p.aggsByKey[key]...), p.aggsAll...)
	}
	for _, x := range p.exits[key] {
		r.Exits = append(r.Exits, KeyExit{Trigger: x.trigger, Exit: x.exit})
	}
	if len(p.wakeAll) == 0 {
		r.Woken = p.wake[key]
	} else {
		r.Woken = mergeByName(p.wake[key], p.wakeAll)
	}
	return r
}

// On returns what an event of this key runs, or nil when no rule reads
// the key: such an event only updates built-in state. One lookup, no
// allocation.
func (p *Pack) On(key string) *KeyRules {
	if r, ok := p.on[key]; ok {
		return r
	}
	return p.onAny
}

// Override changes a trigger's priority or holdout share.
type Override struct {
	Priority *int
	Holdout  *float64
}

// WithOverrides returns a copy of the pack in which the named triggers
// carry the given overrides; p itself is unchanged. Rule tests and
// backtests use it to try a variation without editing the pack.
func (p *Pack) WithOverrides(o map[string]Override) (*Pack, error) {
	for name := range o {
		if p.byName[name] == nil {
			return nil, fmt.Errorf("override of unknown trigger %q", name)
		}
	}
	q := *p
	q.Triggers = make([]*Trigger, len(p.Triggers))
	for i, t := range p.Triggers {
		ov, ok := o[t.Name]
		if !ok {
			q.Triggers[i] = t
			continue
		}
		c := *t
		if ov.Priority != nil {
			c.Priority = *ov.Priority
		}
		if ov.Holdout != nil {
			c.Holdout = *ov.Holdout
		}
		q.Triggers[i] = &c
	}
	q.Aggregates = append([]*Aggregate(nil), p.Aggregates...)
	q.index()
	return &q, nil
}

// Trigger returns the trigger of that name, or nil.
func (p *Pack) Trigger(name string) *Trigger { return p.byName[name] }

// Aggregate returns the aggregate of that name, or nil.
func (p *Pack) Aggregate(name string) *Aggregate { return p.aggByName[name] }

// Reads reports whether any rule wakes, exits or aggregates on this key.
// An event no rule reads only updates built-in state.
func (p *Pack) Reads(key string) bool { return p.On(key) != nil }

func mergeByName(a, b []*Trigger) []*Trigger {
	out := make([]*Trigger, 0, len(a)+len(b))
	out = append(out, a...)
	for _, t := range b {
		dup := false
		for _, x := range a {
			if x == t {
				dup = true
			}
		}
		if !dup {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Options tunes Load.
type Options struct {
	// Templates, when non-nil, is the set of template names that exist;
	// a step or variant naming another is an error.
	Templates map[string]bool
	// MaxCost is the most an expression may be estimated to cost, and the
	// limit every evaluation is held to. Default 100000.
	MaxCost uint64
}

var triggerName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// Load reads every *.yaml and *.yml file at the top of fsys and returns the
// compiled pack, or an ErrorList of every problem found.
func Load(fsys fs.FS, opts Options) (*Pack, error) {
	if opts.MaxCost == 0 {
		opts.MaxCost = 100000
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read rule directory: %w", err)
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") {
			continue
		}
		if ext := path.Ext(n); ext == ".yaml" || ext == ".yml" {
			files = append(files, n)
		}
	}
	sort.Strings(files)
	srcs := make(map[string][]byte, len(files))
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("read rule file %s: %w", f, err)
		}
		srcs[f] = b
	}
	return LoadSources(files, srcs, opts)
}

// LoadSources is Load over in-memory files, in the given order.
func LoadSources(files []string, srcs map[string][]byte, opts Options) (*Pack, error) {
	if opts.MaxCost == 0 {
		opts.MaxCost = 100000
	}
	e := &yamlpos.Errors{}
	raw := &rawPack{}
	for _, f := range files {
		for _, doc := range yamlpos.Parse(f, srcs[f], e) {
			raw.decode(doc, e)
		}
	}
	if len(files) == 0 {
		e.Add(Pos{File: "."}, "no rule files (*.yaml) found")
	}
	pack := compilePack(raw, opts, e)
	if len(e.List) > 0 {
		return nil, e.List.Sorted()
	}
	pack.Files = files
	return pack, nil
}
