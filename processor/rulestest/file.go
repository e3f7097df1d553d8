package rulestest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/microtrigger/microtrigger/internal/yamlpos"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/schema"
)

// File is a loaded test file.
type File struct {
	Path      string
	RuleDir   string // absolute or relative to the working directory
	Start     time.Time
	Grace     *time.Duration
	Users     map[string]map[string]any
	Overrides map[string]rules.Override
	Tests     []*Case
}

// Case is one named test.
type Case struct {
	Name        string
	Pos         yamlpos.Pos
	Grace       *time.Duration // overrides the file's
	Users       map[string]map[string]any
	Overrides   map[string]rules.Override
	Events      []Event
	Checkpoints []*Checkpoint
}

// Event is one input event with its position in the file.
type Event struct {
	Pos   yamlpos.Pos
	Raw   []byte // the JSON handed to schema.DecodeEvent
	Event schema.Event
}

// Checkpoint is an eval_time and what must have happened by then.
type Checkpoint struct {
	Pos      yamlpos.Pos
	EvalTime time.Time
	Label    string // as written, for reports
	Commands []Expect
	// Suppressions is nil when not checked; an empty, non-nil slice means
	// there must be none.
	Suppressions []Expect
}

// Expect is an expected command or suppression: only the fields given are
// compared; data is compared as a subset.
type Expect struct {
	Pos    yamlpos.Pos
	Fields map[string]any
}

// Load reads and checks a test file. Every problem, including events the
// production decoder refuses, is reported as file:line:col.
func Load(path string) (*File, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rule test file: %w", err)
	}
	e := &yamlpos.Errors{}
	docs := yamlpos.Parse(path, src, e)
	if len(docs) != 1 {
		if len(e.List) == 0 {
			e.Add(yamlpos.Pos{File: path}, "a rule test file holds exactly one YAML document")
		}
		return nil, e.Err()
	}
	f := &File{Path: path}
	top := docs[0].Fields(e, "rule test file", "rule_dir", "start_time", "grace", "users", "overrides", "tests")
	if top == nil {
		return nil, e.Err()
	}
	if n := top["rule_dir"]; n != nil {
		if s, ok := n.Str(e, "rule_dir"); ok {
			f.RuleDir = s
			if !filepath.IsAbs(s) {
				f.RuleDir = filepath.Join(filepath.Dir(path), s)
			}
		}
	} else {
		e.Add(docs[0].Pos, "rule_dir is required")
	}
	f.Start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	if n := top["start_time"]; n != nil {
		s, _ := n.Str(e, "start_time")
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			e.Add(n.Pos, "start_time: want an RFC 3339 time such as 2026-03-02T09:00:00Z")
		}
		f.Start = t.UTC()
	}
	if n := top["grace"]; n != nil {
		s, _ := n.Str(e, "grace")
		d, err := rules.ParseDuration(s)
		if err != nil {
			e.Add(n.Pos, "grace: %v", err)
		}
		f.Grace = &d
	}
	f.Users = users(top["users"], e)
	f.Overrides = overrides(top["overrides"], e)
	tests := top["tests"]
	if tests == nil || tests.Kind != yamlpos.Seq || len(tests.Items) == 0 {
		e.Add(docs[0].Pos, "tests must be a non-empty list")
		return nil, e.Err()
	}
	names := map[string]bool{}
	for ti, tn := range tests.Items {
		c := f.testCase(tn, ti, e)
		if c == nil {
			continue
		}
		if names[c.Name] {
			e.Add(tn.Pos, "test %q appears twice", c.Name)
		}
		names[c.Name] = true
		f.Tests = append(f.Tests, c)
	}
	if err := e.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

func users(n *yamlpos.Node, e *yamlpos.Errors) map[string]map[string]any {
	if n == nil {
		return nil
	}
	if n.Kind != yamlpos.Map {
		e.Add(n.Pos, "users must map user ids to their traits")
		return nil
	}
	out := map[string]map[string]any{}
	for i, k := range n.Keys {
		v, ok := n.Vals[i].Data().(map[string]any)
		if !ok && n.Vals[i].Kind != yamlpos.Null {
			e.Add(n.Vals[i].Pos, "traits of user %q must be a mapping", k.Value)
			continue
		}
		out[k.Value] = v
	}
	return out
}

func overrides(n *yamlpos.Node, e *yamlpos.Errors) map[string]rules.Override {
	if n == nil {
		return nil
	}
	if n.Kind != yamlpos.Map {
		e.Add(n.Pos, "overrides must map trigger names to {priority, holdout}")
		return nil
	}
	out := map[string]rules.Override{}
	for i, k := range n.Keys {
		f := n.Vals[i].Fields(e, "override of "+k.Value, "priority", "holdout")
		var o rules.Override
		if p := f["priority"]; p != nil {
			if v, ok := p.Int(e, "priority"); ok {
				o.Priority = &v
			}
		}
		if h := f["holdout"]; h != nil {
			if v, ok := h.Number(e, "holdout"); ok {
				o.Holdout = &v
			}
		}
		out[k.Value] = o
	}
	return out
}

// parseAt reads an `at` or `eval_time`: an offset from start_time ("90s",
// "1h", "3d") or an absolute RFC 3339 time.
func parseAt(n *yamlpos.Node, start time.Time, e *yamlpos.Errors, what string) (time.Time, bool) {
	s, ok := n.Str(e, what)
	if !ok {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	neg := strings.HasPrefix(s, "-")
	d, err := rules.ParseDuration(strings.TrimPrefix(s, "-"))
	if err != nil {
		e.Add(n.Pos, "%s: want an offset such as 90s, 1h, 3d or an RFC 3339 time", what)
		return time.Time{}, false
	}
	if neg {
		d = -d
	}
	return start.Add(d), true
}

func (f *File) testCase(n *yamlpos.Node, index int, e *yamlpos.Errors) *Case {
	fields := n.Fields(e, "test", "name", "grace", "users", "overrides", "input_events", "command_test")
	if fields == nil {
		return nil
	}
	c := &Case{Pos: n.Pos, Name: fmt.Sprintf("test %d", index+1)}
	if nn := fields["name"]; nn != nil {
		c.Name, _ = nn.Str(e, "name")
	}
	if g := fields["grace"]; g != nil {
		s, _ := g.Str(e, "grace")
		d, err := rules.ParseDuration(s)
		if err != nil {
			e.Add(g.Pos, "grace: %v", err)
		}
		c.Grace = &d
	}
	c.Users = users(fields["users"], e)
	c.Overrides = overrides(fields["overrides"], e)
	if ev := fields["input_events"]; ev != nil {
		if ev.Kind != yamlpos.Seq {
			e.Add(ev.Pos, "input_events must be a list")
		} else {
			for i, it := range ev.Items {
				if x, ok := f.event(c, i, it, e); ok {
					c.Events = append(c.Events, x)
				}
			}
		}
	}
	ct := fields["command_test"]
	if ct == nil || ct.Kind != yamlpos.Seq || len(ct.Items) == 0 {
		e.Add(n.Pos, "test %q: command_test must list at least one eval_time", c.Name)
		return c
	}
	for _, cn := range ct.Items {
		cf := cn.Fields(e, "command_test entry", "eval_time", "exp_commands", "exp_suppressions")
		if cf == nil {
			continue
		}
		cp := &Checkpoint{Pos: cn.Pos}
		if et := cf["eval_time"]; et != nil {
			cp.EvalTime, _ = parseAt(et, f.Start, e, "eval_time")
			cp.Label = et.Value
		} else {
			e.Add(cn.Pos, "command_test entry needs an eval_time")
		}
		if x := cf["exp_commands"]; x != nil {
			cp.Commands = expects(x, e, "exp_commands", commandFields())
		}
		if cp.Commands == nil {
			cp.Commands = []Expect{}
		}
		if x := cf["exp_suppressions"]; x != nil {
			cp.Suppressions = expects(x, e, "exp_suppressions", suppressionFields())
			if cp.Suppressions == nil {
				cp.Suppressions = []Expect{}
			}
		}
		c.Checkpoints = append(c.Checkpoints, cp)
	}
	return c
}

func commandFields() []string {
	return []string{"id", "user_id", "email", "trigger", "step", "template", "variant", "intent", "send_at", "expires_at", "data", "cause"}
}

func suppressionFields() []string {
	return []string{"user_id", "trigger", "step", "template", "variant", "reason", "at", "until", "cap"}
}

func expects(n *yamlpos.Node, e *yamlpos.Errors, what string, allowed []string) []Expect {
	if n.Kind == yamlpos.Null {
		return nil
	}
	if n.Kind != yamlpos.Seq {
		e.Add(n.Pos, "%s must be a list", what)
		return nil
	}
	out := []Expect{}
	for _, it := range n.Items {
		fields := it.Fields(e, what+" entry", allowed...)
		x := Expect{Pos: it.Pos, Fields: map[string]any{}}
		for k, v := range fields {
			x.Fields[k] = v.Data()
		}
		out = append(out, x)
	}
	return out
}

// event turns one input entry (a Segment envelope plus `at`) into the JSON
// the production decoder reads, and decodes it.
func (f *File) event(c *Case, i int, n *yamlpos.Node, e *yamlpos.Errors) (Event, bool) {
	if n.Kind != yamlpos.Map {
		e.Add(n.Pos, "an input event must be a mapping (a Segment envelope plus at)")
		return Event{}, false
	}
	m := n.Data().(map[string]any)
	at := n.Get("at")
	if at == nil {
		e.Add(n.Pos, "input event needs at (an offset from start_time, or a time)")
		return Event{}, false
	}
	t, ok := parseAt(at, f.Start, e, "at")
	if !ok {
		return Event{}, false
	}
	delete(m, "at")
	if _, has := m["timestamp"]; has {
		e.Add(n.Get("timestamp").Pos, "give the time as at, not timestamp")
		return Event{}, false
	}
	m["timestamp"] = schema.FormatTime(t)
	if _, has := m["messageId"]; !has {
		// Deterministic, so that a test can repeat one on purpose.
		h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d", filepath.Base(f.Path), c.Name, i)))
		m["messageId"] = "t-" + hex.EncodeToString(h[:8])
	}
	raw, err := json.Marshal(m)
	if err != nil {
		e.Add(n.Pos, "input event: %v", err)
		return Event{}, false
	}
	ev, err := schema.DecodeEvent(raw)
	if err != nil {
		e.Add(n.Pos, "input event refused by the event decoder: %v", err)
		return Event{}, false
	}
	return Event{Pos: n.Pos, Raw: raw, Event: ev}, true
}

// sortedUsers returns user ids in order.
func sortedUsers(m map[string]map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
