package rulestest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	goyaml "github.com/goccy/go-yaml"

	"github.com/microtrigger/microtrigger/internal/yamlpos"
	"github.com/microtrigger/microtrigger/processor/engine"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/store"
	"github.com/microtrigger/microtrigger/processor/task"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/schema/zoneinfo"
)

// Options selects and tunes a run.
type Options struct {
	// Run, when non-empty, runs only tests whose name matches one of them.
	Run []*regexp.Regexp
	// Templates, when non-nil, is passed to the rule loader.
	Templates map[string]bool
	// Zones is the time zone database of quiet hours and caps; pass one
	// to share it among files. Default a new zoneinfo.DB (embedded in the
	// binary, as in the live processor).
	Zones *zoneinfo.DB
}

// CaseResult is the outcome of one test.
type CaseResult struct {
	File     string
	Name     string
	Pos      yamlpos.Pos // of the test in its file
	Failures []Failure
	// Err is set when the test could not run to its end (an override of an
	// unknown trigger, a rule whose evaluation failed).
	Err error
}

// FileResult is the outcome of one test file.
type FileResult struct {
	File string
	// LoadErr is set when the file, or the rule pack it names, does not
	// load: no test of it ran. It is a *LoadError.
	LoadErr error
	Cases   []CaseResult
}

// LoadError is a test file, or the rule pack it names, that does not load.
type LoadError struct {
	File string // the test file
	// RuleDir is the pack's directory when it is the pack that does not
	// load; "" when it is the file.
	RuleDir string
	Err     error // a yamlpos.ErrorList when the problems have positions
}

func (e *LoadError) Error() string {
	if e.RuleDir != "" {
		return fmt.Sprintf("%s: rule pack %s does not load:\n%v", e.File, e.RuleDir, e.Err)
	}
	return fmt.Sprintf("%s does not load:\n%v", e.File, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

// Passed reports whether the test passed.
func (r *CaseResult) Passed() bool { return r.Err == nil && len(r.Failures) == 0 }

// Failure is one checkpoint whose expectations were not met.
type Failure struct {
	Pos      yamlpos.Pos // of the checkpoint (its eval_time entry)
	EvalTime string
	What     string // "commands" or "suppressions"
	Exp, Got []map[string]any
	// Missing and Unexpected list the indexes that did not match.
	Diff string
}

// Run runs the file's tests. When the rule pack does not load, no test
// runs and the error is a *LoadError whose list of problems is positioned
// in the pack's files (paths joined to RuleDir, so that they open from the
// working directory).
func (f *File) Run(ctx context.Context, opts Options) ([]CaseResult, error) {
	pack, err := rules.Load(os.DirFS(f.RuleDir), rules.Options{Templates: opts.Templates})
	if err != nil {
		return nil, &LoadError{File: f.Path, RuleDir: f.RuleDir, Err: inDir(f.RuleDir, err)}
	}
	if opts.Zones == nil {
		opts.Zones = zoneinfo.New()
	}
	var results []CaseResult
	for _, c := range f.Tests {
		if !selected(c.Name, opts.Run) {
			continue
		}
		r := CaseResult{File: f.Path, Name: c.Name, Pos: c.Pos}
		if ctx.Err() != nil {
			r.Err = ctx.Err()
		} else {
			r.Failures, r.Err = f.runCase(pack, c, opts.Zones)
		}
		results = append(results, r)
	}
	return results, nil
}

// inDir rewrites the positions of a rule pack's errors, relative to its
// directory, to paths under dir.
func inDir(dir string, err error) error {
	var list rules.ErrorList
	if !errors.As(err, &list) {
		return err
	}
	out := make(rules.ErrorList, len(list))
	for i, e := range list {
		c := *e
		if c.Pos.File != "" {
			c.Pos.File = filepath.Join(dir, c.Pos.File)
		}
		out[i] = &c
	}
	return out
}

func selected(name string, res []*regexp.Regexp) bool {
	if len(res) == 0 {
		return true
	}
	for _, re := range res {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

func (f *File) runCase(pack *rules.Pack, c *Case, zones *zoneinfo.DB) ([]Failure, error) {
	ov := map[string]rules.Override{}
	for k, v := range f.Overrides {
		ov[k] = v
	}
	for k, v := range c.Overrides {
		ov[k] = v
	}
	if len(ov) > 0 {
		var err error
		if pack, err = pack.WithOverrides(ov); err != nil {
			return nil, err
		}
	}
	db, err := store.Open("", store.Options{FS: vfs.NewMem(), CacheSize: 1 << 20})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	grace := f.Grace
	if c.Grace != nil {
		grace = c.Grace
	}
	tk, err := task.New(task.Config{Engine: engine.New(pack, engine.Options{Zones: zones}), Store: db, Grace: grace})
	if err != nil {
		return nil, err
	}

	// Traits arrive as identify calls just before start_time.
	var inputs []task.Input
	allUsers := map[string]map[string]any{}
	for k, v := range f.Users {
		allUsers[k] = v
	}
	for k, v := range c.Users {
		allUsers[k] = v
	}
	for i, id := range sortedUsers(allUsers) {
		m := map[string]any{
			"type": "identify", "userId": id, "messageId": "traits-" + id,
			"timestamp": schema.FormatTime(f.Start.Add(-time.Second)), "traits": allUsers[id],
		}
		raw, _ := json.Marshal(m)
		ev, err := schema.DecodeEvent(raw)
		if err != nil {
			return nil, fmt.Errorf("traits of user %s: %w", id, err)
		}
		inputs = append(inputs, task.Input{Event: ev, Raw: raw, Seq: int64(i - len(allUsers))})
	}
	for i, ev := range c.Events {
		inputs = append(inputs, task.Input{Event: ev.Event, Raw: ev.Raw, Seq: int64(i)})
	}

	var cmds []schema.SendCommand
	var sups []schema.Suppression
	var failures []Failure
	offered := make([]bool, len(inputs))
	for _, cp := range c.Checkpoints {
		for i, in := range inputs {
			if offered[i] || in.Event.Timestamp.After(cp.EvalTime) {
				continue
			}
			offered[i] = true
			if err := tk.Offer(in); err != nil {
				return nil, err
			}
			if err := tk.Advance(in.Event.Timestamp); err != nil {
				return nil, err
			}
		}
		if err := tk.AdvanceWatermark(cp.EvalTime); err != nil {
			return nil, err
		}
		out, err := tk.Flush(context.Background())
		if err != nil {
			return nil, err
		}
		if len(out.Errors) > 0 {
			err := out.Errors[0]
			var ee *rules.EvalError
			if errors.As(err, &ee) {
				c := *ee
				c.Pos.File = filepath.Join(f.RuleDir, c.Pos.File)
				err = &c
			}
			return failures, fmt.Errorf("rule evaluation failed by eval_time %s (%s): %w", cp.Label, cp.Pos, err)
		}
		cmds = append(cmds, out.Commands...)
		sups = append(sups, out.Suppressions...)
		if fl := compare(f.Start, cp, "commands", cp.Commands, commandsAsMaps(cmds)); fl != nil {
			failures = append(failures, *fl)
		}
		if cp.Suppressions != nil {
			if fl := compare(f.Start, cp, "suppressions", cp.Suppressions, suppressionsAsMaps(sups)); fl != nil {
				failures = append(failures, *fl)
			}
		}
	}
	return failures, nil
}

func commandsAsMaps(cmds []schema.SendCommand) []map[string]any {
	out := make([]map[string]any, 0, len(cmds))
	for i := range cmds {
		b, _ := schema.MarshalCommand(&cmds[i])
		m := decodeNumbers(b)
		out = append(out, m)
	}
	sortMaps(out, "send_at", "user_id", "trigger", "step")
	return out
}

func suppressionsAsMaps(sups []schema.Suppression) []map[string]any {
	out := make([]map[string]any, 0, len(sups))
	for i := range sups {
		b, _ := schema.AppendSuppression(nil, &sups[i])
		m := decodeNumbers(b)
		out = append(out, m)
	}
	sortMaps(out, "at", "user_id", "trigger", "step")
	return out
}

// decodeNumbers decodes a record keeping numbers as written (2, not 2.0).
func decodeNumbers(b []byte) map[string]any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	_ = d.Decode(&m)
	for k, v := range m {
		m[k] = plainNumbers(v)
	}
	return m
}

// plainNumbers turns json.Number into int64 or float64 for display.
func plainNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = plainNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = plainNumbers(e)
		}
	}
	return v
}

func sortMaps(ms []map[string]any, keys ...string) {
	sort.SliceStable(ms, func(i, j int) bool {
		for _, k := range keys {
			a, b := fmt.Sprint(ms[i][k]), fmt.Sprint(ms[j][k])
			if k == "step" {
				a, b = fmt.Sprintf("%08v", ms[i][k]), fmt.Sprintf("%08v", ms[j][k])
			}
			if a != b {
				return a < b
			}
		}
		return false
	})
}

// compare matches expectations against what happened, in order. Times in
// expectations may be offsets from start_time.
func compare(start time.Time, cp *Checkpoint, what string, exp []Expect, got []map[string]any) *Failure {
	ok := len(exp) == len(got)
	for i := 0; ok && i < len(exp); i++ {
		ok = matches(start, exp[i].Fields, got[i])
	}
	if ok {
		return nil
	}
	fl := &Failure{Pos: cp.Pos, EvalTime: cp.Label, What: what, Got: got}
	for _, x := range exp {
		fl.Exp = append(fl.Exp, normalizeExpect(start, x.Fields))
	}
	return fl
}

func normalizeExpect(start time.Time, m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if s, isStr := v.(string); isStr && (k == "send_at" || k == "expires_at" || k == "at" || k == "until") {
			if t, ok := absTime(start, s); ok {
				v = schema.FormatTime(t)
			}
		}
		out[k] = v
	}
	return out
}

func absTime(start time.Time, s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	d, err := rules.ParseDuration(s)
	if err != nil {
		return time.Time{}, false
	}
	return start.Add(d), true
}

func matches(start time.Time, exp, got map[string]any) bool {
	for k, want := range exp {
		have, ok := got[k]
		if !ok {
			return false
		}
		switch k {
		case "send_at", "expires_at", "at", "until":
			ws, _ := want.(string)
			wt, ok1 := absTime(start, ws)
			ht, err := time.Parse(time.RFC3339Nano, fmt.Sprint(have))
			if !ok1 || err != nil || !wt.Equal(ht) {
				return false
			}
		case "data":
			if !subset(want, have) {
				return false
			}
		default:
			if !equalScalar(want, have) {
				return false
			}
		}
	}
	return true
}

func equalScalar(want, have any) bool {
	wf, wNum := number(want)
	hf, hNum := number(have)
	if wNum && hNum {
		return wf == hf
	}
	return fmt.Sprint(want) == fmt.Sprint(have)
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case int:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// subset reports whether want is contained in have (JSON containment).
func subset(want, have any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if hv, ok := h[k]; !ok || !subset(v, hv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !subset(w[i], h[i]) {
				return false
			}
		}
		return true
	default:
		return equalScalar(want, have)
	}
}

// Format writes a failing result the way promtool does: the test, with
// its file and line, the eval time, then what was expected and what came
// out.
func (r *CaseResult) Format() string {
	var b strings.Builder
	where := r.File
	if r.Pos.Line > 0 {
		where = r.Pos.String()
	}
	fmt.Fprintf(&b, "  FAILED %s: %s\n", where, r.Name)
	for _, fl := range r.Failures {
		fmt.Fprintf(&b, "    %s at eval_time %s (%s):\n", fl.What, fl.EvalTime, fl.Pos)
		fmt.Fprintf(&b, "      exp:\n%s", indent(toYAML(fl.Exp), "        "))
		fmt.Fprintf(&b, "      got:\n%s", indent(toYAML(fl.Got), "        "))
	}
	if r.Err != nil {
		fmt.Fprintf(&b, "    %v\n", r.Err)
	}
	return b.String()
}

// Format writes a file that did not load: what did not load, then every
// problem as file:line:col: message.
func (e *LoadError) Format() string {
	var b strings.Builder
	if e.RuleDir != "" {
		fmt.Fprintf(&b, "  LOAD FAILED %s: its rule pack %s does not load:\n", e.File, e.RuleDir)
	} else {
		fmt.Fprintf(&b, "  LOAD FAILED %s:\n", e.File)
	}
	var list yamlpos.ErrorList
	if errors.As(e.Err, &list) {
		for _, le := range list {
			fmt.Fprintf(&b, "    %s\n", le.Error())
		}
		return b.String()
	}
	fmt.Fprintf(&b, "    %v\n", e.Err)
	return b.String()
}

func toYAML(v []map[string]any) string {
	if len(v) == 0 {
		return "[]\n"
	}
	b, err := goyaml.MarshalWithOptions(v, goyaml.Flow(false))
	if err != nil {
		return fmt.Sprintf("%v\n", v)
	}
	return string(b)
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n") + "\n"
}
