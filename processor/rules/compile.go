package rules

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"

	"github.com/microtrigger/microtrigger/internal/yamlpos"
	"github.com/microtrigger/microtrigger/processor/policy"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/schema"
)

// rawPack gathers the top-level sections of every file before compiling.
type rawPack struct {
	policy   []*yamlpos.Node
	aggs     []*yamlpos.Node
	triggers []*yamlpos.Node
}

func (r *rawPack) decode(doc *yamlpos.Node, e *yamlpos.Errors) {
	if doc.Kind == yamlpos.Null {
		return
	}
	f := doc.Fields(e, "rule file", "policy", "aggregates", "triggers")
	if n := f["policy"]; n != nil {
		r.policy = append(r.policy, n)
	}
	for _, sec := range []struct {
		name string
		dst  *[]*yamlpos.Node
	}{{"aggregates", &r.aggs}, {"triggers", &r.triggers}} {
		n := f[sec.name]
		if n == nil {
			continue
		}
		if n.Kind != yamlpos.Seq {
			e.Add(n.Pos, "%s must be a list, not %s", sec.name, n.Kind)
			continue
		}
		*sec.dst = append(*sec.dst, n.Items...)
	}
}

type compiler struct {
	env  *cel.Env
	opts Options
	e    *yamlpos.Errors
	// quiet are the pack's quiet hours (nil: none), which a send window
	// must not lie in whole.
	quiet *policy.QuietHours
}

func compilePack(raw *rawPack, opts Options, e *yamlpos.Errors) *Pack {
	p := &Pack{
		Policy:     policy.DefaultConfig(),
		byName:     map[string]*Trigger{},
		aggByName:  map[string]*Aggregate{},
		wake:       map[string][]*Trigger{},
		exits:      map[string][]exitRef{},
		aggsByKey:  map[string][]*Aggregate{},
		keysOfRule: map[string]bool{},
	}
	for i, n := range raw.policy {
		if i > 0 {
			e.Add(n.Pos, "policy is declared more than once (first at %s)", raw.policy[0].Pos)
			continue
		}
		decodePolicy(n, &p.Policy, e)
	}
	// Aggregates are declared before compiling anything, so that
	// user.agg() knows their kinds.
	for _, n := range raw.aggs {
		if a := declareAggregate(n, e); a != nil {
			if prev := p.aggByName[a.Name]; prev != nil {
				e.Add(a.Pos, "aggregate %q is declared twice (first at %s)", a.Name, prev.Pos)
				continue
			}
			p.aggByName[a.Name] = a
			p.Aggregates = append(p.Aggregates, a)
		}
	}
	env, err := newEnv(p.aggByName)
	if err != nil {
		e.Add(Pos{File: "."}, "build CEL environment: %v", err)
		return p
	}
	c := &compiler{env: env, opts: opts, e: e, quiet: p.Policy.Quiet}
	for _, n := range raw.aggs {
		f := n.Fields(&yamlpos.Errors{}, "", aggFields()...) // errors were reported by declareAggregate
		name := ""
		if nn := f["name"]; nn != nil {
			name = nn.Value
		}
		a := p.aggByName[name]
		if a == nil || a.Pos != n.Pos {
			continue
		}
		c.compileAggregate(a, f)
	}
	for _, n := range raw.triggers {
		t := c.trigger(n)
		if t == nil {
			continue
		}
		if prev := p.byName[t.Name]; prev != nil {
			e.Add(t.Pos, "trigger %q is declared twice (first at %s)", t.Name, prev.Pos)
			continue
		}
		p.byName[t.Name] = t
		p.Triggers = append(p.Triggers, t)
	}
	c.checkCaps(p, raw)
	p.index()
	return p
}

// checkCaps refuses a cap on a category no trigger declares: a misspelt
// category would cap nothing.
func (c *compiler) checkCaps(p *Pack, raw *rawPack) {
	if len(p.Policy.Caps) == 0 || len(raw.policy) == 0 {
		return
	}
	declared := map[string]bool{}
	for _, t := range p.Triggers {
		declared[t.Category] = true
	}
	caps := raw.policy[0].Get("caps")
	if caps == nil {
		return
	}
	for _, it := range caps.Items {
		cn := it.Get("category")
		if cn == nil || declared[cn.Value] || !triggerName.MatchString(cn.Value) {
			continue
		}
		c.e.Add(cn.Pos, "policy.caps category %q: no trigger declares category: %s, so the cap would count nothing", cn.Value, cn.Value)
	}
}

func decodePolicy(n *yamlpos.Node, c *policy.Config, e *yamlpos.Errors) {
	f := n.Fields(e, "policy", "grace", "timezone", "consent", "frequency", "caps", "quiet_hours", "session_gap", "score", "max_future_skew")
	if v := f["caps"]; v != nil {
		c.Caps = decodeCaps(v, e)
	}
	if v := f["grace"]; v != nil {
		c.Grace = duration(v, e, "policy.grace")
	}
	if v := f["max_future_skew"]; v != nil {
		c.MaxFutureSkew = duration(v, e, "policy.max_future_skew")
	}
	if v := f["session_gap"]; v != nil {
		if d := duration(v, e, "policy.session_gap"); d > 0 {
			c.SessionGap = d
		} else {
			e.Add(v.Pos, "policy.session_gap must be positive")
		}
	}
	if v := f["timezone"]; v != nil {
		if s, ok := v.Str(e, "policy.timezone"); ok {
			if err := schema.CheckTimezone(s); err != nil {
				e.Add(v.Pos, "policy.timezone: %v", err)
			}
			c.Zone = s
		}
	}
	if v := f["consent"]; v != nil {
		cf := v.Fields(e, "policy.consent", "required", "trait")
		if r := cf["required"]; r != nil {
			c.ConsentRequired, _ = r.Bool(e, "policy.consent.required")
		}
		if t := cf["trait"]; t != nil {
			if s, ok := t.Str(e, "policy.consent.trait"); ok && s != "" {
				c.ConsentTrait = s
			}
		}
	}
	if v := f["frequency"]; v != nil {
		ff := v.Fields(e, "policy.frequency", "per_day", "per_week")
		if d := ff["per_day"]; d != nil {
			c.PerDay = nonNegative(d, e, "policy.frequency.per_day")
		}
		if w := ff["per_week"]; w != nil {
			c.PerWeek = nonNegative(w, e, "policy.frequency.per_week")
		}
	}
	if v := f["quiet_hours"]; v != nil {
		if v.Kind == yamlpos.Null {
			c.Quiet = nil
		} else {
			qf := v.Fields(e, "policy.quiet_hours", "start", "end")
			q := &policy.QuietHours{}
			for _, part := range []struct {
				name string
				dst  *int
			}{{"start", &q.Start}, {"end", &q.End}} {
				pn := qf[part.name]
				if pn == nil {
					e.Add(v.Pos, "policy.quiet_hours needs %s (HH:MM)", part.name)
					continue
				}
				s, _ := pn.Str(e, "policy.quiet_hours."+part.name)
				m, err := policy.ParseClock(s)
				if err != nil {
					e.Add(pn.Pos, "policy.quiet_hours.%s: %v", part.name, err)
				}
				*part.dst = m
			}
			c.Quiet = q
		}
	}
	if v := f["score"]; v != nil {
		sf := v.Fields(e, "policy.score", "half_life", "weights")
		if h := sf["half_life"]; h != nil {
			c.ScoreHalfLife = duration(h, e, "policy.score.half_life")
		}
		if w := sf["weights"]; w != nil {
			if w.Kind != yamlpos.Map {
				e.Add(w.Pos, "policy.score.weights must map event names to numbers")
			} else {
				c.ScoreWeights = map[string]float64{}
				for i, k := range w.Keys {
					if x, ok := w.Vals[i].Number(e, "policy.score.weights."+k.Value); ok {
						c.ScoreWeights[k.Value] = x
					}
				}
			}
		}
	}
}

func nonNegative(n *yamlpos.Node, e *yamlpos.Errors, what string) int {
	v, ok := n.Int(e, what)
	if ok && v < 0 {
		e.Add(n.Pos, "%s must not be negative", what)
		return 0
	}
	return v
}

// decodeCaps reads policy.caps: [{category, max, per}], caps per category
// of triggers over a rolling window.
func decodeCaps(n *yamlpos.Node, e *yamlpos.Errors) []policy.Cap {
	if n.Kind != yamlpos.Seq {
		e.Add(n.Pos, "policy.caps must be a list of {category, max, per}")
		return nil
	}
	var out []policy.Cap
	seen := map[string]yamlpos.Pos{}
	for _, it := range n.Items {
		f := it.Fields(e, "policy.caps entry", "category", "max", "per")
		if f == nil {
			continue
		}
		var c policy.Cap
		ok := true
		for _, name := range []string{"category", "max", "per"} {
			if f[name] == nil {
				e.Add(it.Pos, "policy.caps entry needs %s", name)
				ok = false
			}
		}
		if !ok {
			continue
		}
		c.Category, ok = f["category"].Str(e, "policy.caps category")
		if ok && !triggerName.MatchString(c.Category) {
			e.Add(f["category"].Pos, "policy.caps category %q: use lower-case letters, digits and -", c.Category)
			ok = false
		}
		m, mok := f["max"].Int(e, "policy.caps max")
		if mok && m < 1 {
			e.Add(f["max"].Pos, "policy.caps max must be at least 1")
			mok = false
		}
		c.Max = m
		c.Per = positiveDuration(f["per"], e, "policy.caps per")
		if c.Per > policy.MaxCapWindow {
			e.Add(f["per"].Pos, "policy.caps per: %q is longer than %s, the longest window a cap counts (the send log keeps 8 days)", f["per"].Value, "7d")
			continue
		}
		if !ok || !mok || c.Per == 0 {
			continue
		}
		c.Name = c.Category + "/" + f["per"].Value
		if prev, dup := seen[c.Name]; dup {
			e.Add(it.Pos, "policy.caps: %s is capped twice (first at %s)", c.Name, prev)
			continue
		}
		seen[c.Name] = it.Pos
		out = append(out, c)
	}
	return out
}

func duration(n *yamlpos.Node, e *yamlpos.Errors, what string) time.Duration {
	s, ok := n.Str(e, what)
	if !ok {
		return 0
	}
	d, err := ParseDuration(s)
	if err != nil {
		e.Add(n.Pos, "%s: %v", what, err)
	}
	return d
}

// positiveDuration is duration for fields where 0 means nothing sensible.
func positiveDuration(n *yamlpos.Node, e *yamlpos.Errors, what string) time.Duration {
	s, ok := n.Str(e, what)
	if !ok {
		return 0
	}
	d, err := ParseDuration(s)
	switch {
	case err != nil:
		e.Add(n.Pos, "%s: %v", what, err)
	case d <= 0:
		e.Add(n.Pos, "%s: %q: want a positive duration such as 30m, 2h or 1d", what, s)
		d = 0
	}
	return d
}

func aggFields() []string { return []string{"name", "on", "kind", "window", "when", "value", "by"} }

func declareAggregate(n *yamlpos.Node, e *yamlpos.Errors) *Aggregate {
	f := n.Fields(e, "aggregate", aggFields()...)
	if f == nil {
		return nil
	}
	a := &Aggregate{Pos: n.Pos}
	nn := f["name"]
	if nn == nil {
		e.Add(n.Pos, "aggregate needs a name")
		return nil
	}
	a.Name, _ = nn.Str(e, "aggregate name")
	if !triggerName.MatchString(strings.ReplaceAll(a.Name, "_", "-")) {
		e.Add(nn.Pos, "aggregate name %q: use lower-case letters, digits, - and _", a.Name)
	}
	if on := f["on"]; on != nil {
		a.On, _ = on.StrList(e, "aggregate "+a.Name+": on")
	}
	if len(a.On) == 0 {
		e.Add(n.Pos, "aggregate %s: on must name at least one event", a.Name)
	}
	a.Kind = AggCount
	if k := f["kind"]; k != nil {
		s, _ := k.Str(e, "kind")
		switch AggKind(s) {
		case AggCount, AggSum, AggMax:
			a.Kind = AggKind(s)
		default:
			e.Add(k.Pos, "aggregate %s: kind must be count, sum or max", a.Name)
		}
	}
	if w := f["window"]; w != nil {
		a.Window = duration(w, e, "aggregate "+a.Name+": window")
	}
	if a.Window <= 0 {
		e.Add(n.Pos, "aggregate %s: needs a positive window such as 7d", a.Name)
	}
	if a.Kind != AggCount && f["value"] == nil {
		e.Add(n.Pos, "aggregate %s: kind %s needs a value expression", a.Name, a.Kind)
	}
	if a.Kind == AggCount && f["value"] != nil {
		e.Add(f["value"].Pos, "aggregate %s: a count has no value expression", a.Name)
	}
	return a
}

func (c *compiler) compileAggregate(a *Aggregate, f map[string]*yamlpos.Node) {
	what := "aggregate " + a.Name
	if w := f["when"]; w != nil {
		a.When = c.expr(w, what+": when", cel.BoolType)
	}
	if v := f["value"]; v != nil {
		a.Value = c.expr(v, what+": value", cel.DoubleType)
	}
	if b := f["by"]; b != nil {
		a.By = c.expr(b, what+": by", cel.StringType)
	}
}

func triggerFields() []string {
	return []string{
		"name", "description", "intent", "priority", "on", "when", "wait", "recheck", "restart",
		"exit_on", "cooldown", "expire_after", "reentry", "holdout", "variants", "template", "data", "steps",
		"quiet_hours", "send_window", "category",
	}
}

func (c *compiler) trigger(n *yamlpos.Node) *Trigger {
	e := c.e
	f := n.Fields(e, "trigger", triggerFields()...)
	if f == nil {
		return nil
	}
	t := &Trigger{Pos: n.Pos, Reentry: true, QuietHours: true}
	nn := f["name"]
	if nn == nil {
		e.Add(n.Pos, "trigger needs a name")
		return nil
	}
	t.Name, _ = nn.Str(e, "trigger name")
	if !triggerName.MatchString(t.Name) {
		e.Add(nn.Pos, "trigger name %q: use lower-case letters, digits and -", t.Name)
	}
	what := "trigger " + t.Name
	if d := f["description"]; d != nil {
		t.Description, _ = d.Str(e, what+": description")
	}
	if in := f["intent"]; in == nil {
		e.Add(n.Pos, "%s: needs an intent (high, mid or low)", what)
	} else if s, ok := in.Str(e, what+": intent"); ok {
		if IntentWindow(s) == 0 {
			e.Add(in.Pos, "%s: intent %q: want high (within 15m), mid (within 3h) or low (within 24h)", what, s)
		}
		t.Intent = s
	}
	if p := f["priority"]; p != nil {
		t.Priority, _ = p.Int(e, what+": priority")
	}
	if on := f["on"]; on != nil {
		t.On, _ = on.StrList(e, what+": on")
	}
	if len(t.On) == 0 {
		e.Add(n.Pos, "%s: on must name at least one event that wakes it", what)
	}
	if w := f["when"]; w != nil {
		t.When = c.expr(w, what+": when", cel.BoolType)
	}
	if w := f["wait"]; w != nil {
		t.Wait = duration(w, e, what+": wait")
	}
	if r := f["recheck"]; r != nil {
		if f["wait"] == nil {
			e.Add(r.Pos, "%s: recheck needs a wait", what)
		}
		t.Recheck = c.runExpr(r, what+": recheck", cel.BoolType)
	}
	if x := f["exit_on"]; x != nil {
		t.Exits = c.exits(x, what)
	}
	if cd := f["cooldown"]; cd != nil {
		t.Cooldown = duration(cd, e, what+": cooldown")
	}
	if x := f["expire_after"]; x != nil {
		t.ExpireAfter = positiveDuration(x, e, what+": expire_after")
	}
	if r := f["reentry"]; r != nil {
		t.Reentry, _ = r.Bool(e, what+": reentry")
	}
	if q := f["quiet_hours"]; q != nil {
		t.QuietHours, _ = q.Bool(e, what+": quiet_hours")
	}
	if h := f["holdout"]; h != nil {
		t.Holdout = share(h, e, what+": holdout")
	}
	if cn := f["category"]; cn != nil {
		if s, ok := cn.Str(e, what+": category"); ok {
			if !triggerName.MatchString(s) {
				e.Add(cn.Pos, "%s: category %q: use lower-case letters, digits and -", what, s)
			}
			t.Category = s
		}
	}
	var window *policy.SendWindow
	if w := f["send_window"]; w != nil {
		window = c.sendWindow(w, what+": send_window", t.QuietHours)
	}
	if d := f["data"]; d != nil {
		t.Data = c.data(d, what+": data")
	}
	switch {
	case f["steps"] != nil && f["template"] != nil:
		e.Add(f["template"].Pos, "%s: give either template (one email) or steps, not both", what)
	case f["steps"] != nil:
		s := f["steps"]
		if s.Kind != yamlpos.Seq || len(s.Items) == 0 {
			e.Add(s.Pos, "%s: steps must be a non-empty list", what)
		} else {
			for i, sn := range s.Items {
				t.Steps = append(t.Steps, c.step(sn, fmt.Sprintf("%s: step %d", what, i+1)))
			}
		}
	case f["template"] != nil:
		tn := f["template"]
		name, _ := tn.Str(e, what+": template")
		c.checkTemplate(tn, name, what)
		t.Steps = []Step{{Template: name}}
	default:
		e.Add(n.Pos, "%s: needs a template or steps", what)
	}
	for i := range t.Steps {
		st := &t.Steps[i]
		if st.window != nil {
			st.SendWindow = c.sendWindow(st.window, fmt.Sprintf("%s: step %d: send_window", what, i+1), t.QuietHours)
			st.window = nil
		} else {
			st.SendWindow = window
		}
	}
	if r := f["restart"]; r != nil {
		t.Restart, _ = r.Bool(e, what+": restart")
	}
	if v := f["variants"]; v != nil {
		t.Variants = c.variants(v, t, what)
	}
	// The first email must be able to land inside the intent's window.
	if len(t.Steps) > 0 {
		c.checkIntent(t, t.Steps[0].Delay, n, f["steps"], what)
	}
	if t.Recheck == nil && t.waits() {
		c.refuseUnkept(t.When, what+": when")
	}
	if t.Restart && t.Wait == 0 {
		e.Add(f["restart"].Pos, "%s: restart needs a wait to restart", what)
	}
	return t
}

func share(n *yamlpos.Node, e *yamlpos.Errors, what string) float64 {
	s := strings.TrimSpace(n.Value)
	pct := strings.HasSuffix(s, "%")
	var v float64
	if _, err := fmt.Sscanf(strings.TrimSuffix(s, "%"), "%g", &v); err != nil || n.Kind != yamlpos.Scalar {
		e.Add(n.Pos, "%s must be a share such as 0.1 or 10%%", what)
		return 0
	}
	if pct {
		v /= 100
	}
	if v < 0 || v >= 1 || math.IsNaN(v) {
		e.Add(n.Pos, "%s must be at least 0 and below 1 (100%%)", what)
		return 0
	}
	return v
}

func (c *compiler) exits(n *yamlpos.Node, what string) []Exit {
	var out []Exit
	items := n.Items
	if n.Kind != yamlpos.Seq {
		items = []*yamlpos.Node{n}
	}
	for _, it := range items {
		if it.Kind == yamlpos.Scalar {
			out = append(out, Exit{Event: it.Value})
			continue
		}
		f := it.Fields(c.e, what+": exit_on entry", "event", "when")
		if f == nil {
			continue
		}
		x := Exit{}
		if ev := f["event"]; ev != nil {
			x.Event, _ = ev.Str(c.e, what+": exit_on event")
		} else {
			c.e.Add(it.Pos, "%s: exit_on entry needs an event", what)
			continue
		}
		if w := f["when"]; w != nil {
			x.When = c.expr(w, what+": exit_on "+x.Event+": when", cel.BoolType)
		}
		out = append(out, x)
	}
	return out
}

func (c *compiler) step(n *yamlpos.Node, what string) Step {
	f := n.Fields(c.e, what, "template", "delay", "when", "data", "send_window")
	var s Step
	if f == nil {
		return s
	}
	if tn := f["template"]; tn != nil {
		s.Template, _ = tn.Str(c.e, what+": template")
		c.checkTemplate(tn, s.Template, what)
	} else {
		c.e.Add(n.Pos, "%s: needs a template", what)
	}
	if d := f["delay"]; d != nil {
		s.Delay = duration(d, c.e, what+": delay")
	}
	if w := f["when"]; w != nil {
		s.When = c.runExpr(w, what+": when", cel.BoolType)
	}
	if d := f["data"]; d != nil {
		s.Data = c.data(d, what+": data")
	}
	// Read by the trigger, once the pack's quiet hours and the
	// trigger's quiet_hours are known.
	s.window = f["send_window"]
	return s
}

// sendWindow reads a send_window: {start: "HH:MM", end: "HH:MM", days:
// [mon, ...]}. start and end go together (without them, whole days);
// days defaults to every day. A window that quiet hours cover whole is
// refused when the trigger honours them, since nothing could be sent.
func (c *compiler) sendWindow(n *yamlpos.Node, what string, honoursQuiet bool) *policy.SendWindow {
	e := c.e
	f := n.Fields(e, what, "start", "end", "days")
	if f == nil {
		return nil
	}
	w := &policy.SendWindow{}
	ok := true
	switch sn, en := f["start"], f["end"]; {
	case sn == nil && en == nil:
	case sn == nil || en == nil:
		e.Add(n.Pos, "%s needs both start and end (HH:MM), or neither for whole days", what)
		ok = false
	default:
		for _, part := range []struct {
			name string
			node *yamlpos.Node
			dst  *int
		}{{"start", sn, &w.Start}, {"end", en, &w.End}} {
			s, sok := part.node.Str(e, what+"."+part.name)
			if !sok {
				ok = false
				continue
			}
			m, err := policy.ParseClock(s)
			if err != nil {
				e.Add(part.node.Pos, "%s.%s: %v", what, part.name, err)
				ok = false
			}
			*part.dst = m
		}
	}
	if dn := f["days"]; dn == nil {
		for i := range w.Days {
			w.Days[i] = true
		}
	} else {
		days, nodes := dn.StrList(e, what+".days")
		if dn.Kind == yamlpos.Seq && len(dn.Items) == 0 {
			e.Add(dn.Pos, "%s.days must name at least one day", what)
			ok = false
		}
		for i, d := range days {
			wd, err := policy.ParseDay(d)
			switch {
			case err != nil:
				e.Add(nodes[i].Pos, "%s.days: %v", what, err)
				ok = false
			case w.Days[wd]:
				e.Add(nodes[i].Pos, "%s.days: %s appears twice", what, d)
				ok = false
			}
			w.Days[wd] = true
		}
	}
	if !ok {
		return nil
	}
	if honoursQuiet && w.Quiet(c.quiet) {
		e.Add(n.Pos, "%s: the window lies inside the policy's quiet hours, so nothing could be sent; move it, or give the trigger quiet_hours: false", what)
		return nil
	}
	return w
}

func variantFields() []string {
	return []string{"name", "weight", "template", "data", "wait", "steps", "expire_after"}
}

// variants reads t's A/B arms; t's steps are known.
func (c *compiler) variants(n *yamlpos.Node, t *Trigger, what string) []Variant {
	if n.Kind != yamlpos.Seq || len(n.Items) < 2 {
		c.e.Add(n.Pos, "%s: variants must list at least two variants", what)
		return nil
	}
	var out []Variant
	seen := map[string]bool{}
	for _, it := range n.Items {
		f := it.Fields(c.e, what+": variant", variantFields()...)
		if f == nil {
			continue
		}
		v := Variant{Weight: 1}
		if nn := f["name"]; nn != nil {
			v.Name, _ = nn.Str(c.e, what+": variant name")
		}
		if v.Name == "" {
			c.e.Add(it.Pos, "%s: every variant needs a name", what)
		} else if seen[v.Name] {
			c.e.Add(f["name"].Pos, "%s: variant %q appears twice", what, v.Name)
		}
		seen[v.Name] = true
		vw := what + ": variant " + v.Name
		if w := f["weight"]; w != nil {
			v.Weight, _ = w.Number(c.e, what+": variant weight")
			if v.Weight <= 0 {
				c.e.Add(w.Pos, "%s: variant weight must be positive", what)
			}
		}
		if tn := f["template"]; tn != nil {
			v.Template, _ = tn.Str(c.e, what+": variant template")
			c.checkTemplate(tn, v.Template, what)
		}
		if d := f["data"]; d != nil {
			v.Data = c.data(d, vw+": data")
		}
		if w := f["wait"]; w != nil {
			before := len(c.e.List)
			d := duration(w, c.e, vw+": wait")
			v.Wait = &d
			if d == 0 && t.Restart && len(c.e.List) == before {
				c.e.Add(w.Pos, "%s: wait 0s, but the trigger restarts its wait (restart: true): give this variant a wait", vw)
			}
		}
		if x := f["expire_after"]; x != nil {
			v.ExpireAfter = positiveDuration(x, c.e, vw+": expire_after")
		}
		if sn := f["steps"]; sn != nil {
			if v.Delays = c.variantDelays(sn, t, vw); v.Delays != nil {
				c.checkIntent(t, v.Delays[0], it, sn, vw)
			}
		}
		out = append(out, v)
	}
	return out
}

// variantDelays reads a variant's steps: one entry per step of the
// trigger, each giving that step's delay in this variant (an entry without
// a delay keeps the step's).
func (c *compiler) variantDelays(n *yamlpos.Node, t *Trigger, what string) []time.Duration {
	if n.Kind != yamlpos.Seq {
		c.e.Add(n.Pos, "%s: steps must be a list of {delay}, one per step of the trigger", what)
		return nil
	}
	if len(n.Items) != len(t.Steps) {
		c.e.Add(n.Pos, "%s: steps must give one entry per step of the trigger (%d), not %d", what, len(t.Steps), len(n.Items))
		return nil
	}
	out := make([]time.Duration, len(t.Steps))
	for i, it := range n.Items {
		out[i] = t.Steps[i].Delay
		sw := fmt.Sprintf("%s: step %d", what, i+1)
		f := it.Fields(c.e, sw, "delay")
		if f == nil {
			continue
		}
		if d := f["delay"]; d != nil {
			out[i] = duration(d, c.e, sw+": delay")
		}
	}
	return out
}

// checkIntent refuses a first email, delayed first after the run starts
// its steps, that cannot land inside the intent's window; steps is the
// list that gave the delay (nil: none), for the position.
func (c *compiler) checkIntent(t *Trigger, first time.Duration, n, steps *yamlpos.Node, what string) {
	win := IntentWindow(t.Intent)
	if win <= 0 || first <= win {
		return
	}
	p := n.Pos
	if steps != nil && steps.Kind == yamlpos.Seq && len(steps.Items) > 0 {
		p = steps.Items[0].Pos
	}
	c.e.Add(p, "%s: impossible intent: the first email is delayed %s, but %s intent must send within %s",
		what, FormatDuration(first), t.Intent, FormatDuration(win))
}

func (c *compiler) data(n *yamlpos.Node, what string) []DataField {
	if n.Kind != yamlpos.Map {
		c.e.Add(n.Pos, "%s must map names to CEL expressions", what)
		return nil
	}
	var out []DataField
	seen := map[string]bool{}
	for i, k := range n.Keys {
		if seen[k.Value] {
			c.e.Add(k.Pos, "%s: %q appears twice", what, k.Value)
			continue
		}
		seen[k.Value] = true
		if p := c.runExpr(n.Vals[i], what+"."+k.Value, nil); p != nil {
			out = append(out, DataField{Name: k.Value, Expr: p})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (c *compiler) checkTemplate(n *yamlpos.Node, name, what string) {
	if name == "" {
		c.e.Add(n.Pos, "%s: empty template name", what)
		return
	}
	if c.opts.Templates != nil && !c.opts.Templates[name] {
		c.e.Add(n.Pos, "%s: unknown template %q", what, name)
	}
}

// expr compiles one CEL expression held by n, of those an event evaluates
// (event is defined); want is the required result type (nil: any).
func (c *compiler) expr(n *yamlpos.Node, what string, want *cel.Type) *Program {
	return c.compileExpr(n, what, want, false)
}

// runExpr is expr for an expression a run evaluates (recheck, steps,
// data), where event is not defined (eventvar.go).
func (c *compiler) runExpr(n *yamlpos.Node, what string, want *cel.Type) *Program {
	return c.compileExpr(n, what, want, true)
}

func (c *compiler) compileExpr(n *yamlpos.Node, what string, want *cel.Type, onRun bool) *Program {
	src, ok := n.Str(c.e, what)
	if !ok {
		return nil
	}
	if strings.TrimSpace(src) == "" {
		c.e.Add(n.Pos, "%s: empty expression", what)
		return nil
	}
	ast, issues := compile(c.env, src)
	if len(issues) > 0 {
		for _, ci := range issues {
			c.e.Add(n.ExprPos(ci.line, ci.col), "%s: %s", what, ci.msg)
		}
		return nil
	}
	if want != nil {
		out := ast.OutputType()
		okType := out.IsAssignableType(want) || out == cel.DynType
		if want == cel.DoubleType && out == cel.IntType {
			okType = true
		}
		if !okType {
			c.e.Add(n.ExprPos(1, 0), "%s: must be %s, but the expression is %s", what, want, out)
			return nil
		}
	}
	at := func(id int64) Pos {
		loc := ast.NativeRep().SourceInfo().GetStartLocation(id)
		return n.ExprPos(loc.Line(), loc.Column())
	}
	var events []eventUse
	for _, u := range eventUses(ast.NativeRep()) {
		u.pos = at(u.id)
		events = append(events, u)
	}
	// Both checks report at once, so one round of fixes clears them.
	refused := onRun && c.refuseEvent(events, what)
	if reads := absentReads(ast.NativeRep()); len(reads) > 0 {
		for _, r := range reads {
			c.e.Add(at(r.id), "%s: %s", what, r.msg)
		}
		refused = true
	}
	if refused {
		return nil
	}
	est, err := c.env.EstimateCost(ast, sizeEstimator{state.DefaultLimits()})
	if err != nil {
		c.e.Add(n.ExprPos(1, 0), "%s: estimate cost: %v", what, err)
		return nil
	}
	if est.Max > c.opts.MaxCost {
		c.e.Add(n.ExprPos(1, 0), "%s: estimated cost %d exceeds the limit %d; iterate over less", what, est.Max, c.opts.MaxCost)
		return nil
	}
	// No per-step cost accounting at run time: it doubles the price of
	// every evaluation, and the estimate above is already a bound, since
	// every list, map and string a rule can see is bounded (sizeEstimator).
	prg, err := c.env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		c.e.Add(n.ExprPos(1, 0), "%s: %v", what, err)
		return nil
	}
	return &Program{Source: src, Pos: n.ExprPos(1, 0), prg: prg, fast: fastOf(ast.NativeRep()), events: events}
}

// sizeEstimator gives the largest size every list, map and string a rule
// can see may have: the per-user bounds for user state, and for event data
// what fits in an event of schema.MaxEventBytes. With it the cost estimate
// is a bound, which is why evaluations run without cost accounting.
type sizeEstimator struct{ l state.Limits }

func (e sizeEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	bound := uint64(schema.MaxEventBytes) // a string, or the entries of an event's map
	p := n.Path()
	if len(p) >= 2 && p[0] == "user" {
		switch p[1] {
		case "pages":
			bound = uint64(e.l.Pages)
		case "last_seen", "counts":
			bound = uint64(e.l.EventKeys)
		case "hovers", "videos":
			bound = uint64(e.l.Elements)
		case "traits":
			bound = uint64(e.l.Traits)
		case "seen_ids":
			bound = uint64(e.l.SeenIDs)
		case "sends":
			bound = uint64(e.l.Sends)
		case "cart":
			bound = uint64(e.l.CartItems)
		case "session":
			bound = uint64(e.l.Session)
		case "aggs":
			bound = uint64(e.l.AggEntry)
		}
	}
	s := cost.RangedSizeEstimate(0, bound)
	return &s
}

func (e sizeEstimator) EstimateCallCost(fn, _ string, _ *cost.AstNode, _ []cost.AstNode) *cost.CallEstimate {
	switch fn {
	case "agg":
		return &cost.CallEstimate{CostEstimate: cost.FixedCostEstimate(uint64(e.l.AggEntry))}
	case "views", "scroll", "dwell", "sessionScroll", "sessionVideo", "hovers", "count", "seen", "last", "seenSince", "num", "str", "trait":
		return &cost.CallEstimate{CostEstimate: cost.FixedCostEstimate(1)}
	}
	return nil
}
