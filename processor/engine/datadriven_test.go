package engine_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	// The tests name zones such as Europe/Berlin; with the zone database
	// compiled in they do not depend on the machine having one.
	_ "time/tzdata"

	"github.com/cockroachdb/datadriven"

	"github.com/microtrigger/microtrigger/processor/engine"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/schema"
)

// newEngine is the one place the tests build an engine.
func newEngine(pack *rules.Pack) *engine.Engine {
	return engine.New(pack, engine.Options{})
}

// TestEngine drives the engine directly, with explicit logical times: no
// store, no watermark, no clock. Each file under testdata/ is one behaviour
// and starts with no pack and no users. Commands:
//
//	pack
//	<rule pack YAML>
//	    Loads the pack (rules.LoadSources) into a new engine; users are
//	    forgotten.
//
//	user name=u1 [tz=ZONE] [email=ADDR|none] [opt_in=true|false|none] [at=T] [TRAIT=VALUE]...
//	    An identify call at T (default 2026-01-01T00:00:00Z) with the traits
//	    email (default u1@example.com), email_opt_in (default true),
//	    timezone and any others.
//
//	event user=u1 at=T
//	<TYPE [KEY=VALUE]...> or <a JSON Segment envelope>
//	    One event through schema.DecodeEvent and Engine.Event. In the
//	    key=value form, event= and name= are the track and page names,
//	    path= and tz= set context.page.path and context.timezone, id= the
//	    messageId; other keys are properties (traits for identify). Values
//	    are numbers, true/false, or strings; (Two Words) holds spaces. A
//	    timer due at or before T must have been fired first, as every
//	    driver does.
//
//	timer user=u1 [at=T]
//	    Engine.Timer at T, by default the user's next due time.
//
//	advance to=T [user=u1]
//	    Fires every timer due up to T, earliest first (ties by user), as a
//	    driver does when its watermark moves to T.
//
//	state user=u1
//	    The user's trigger states, runs and send log.
//
//	replay users=N events=N seed=N [limits=small]
//	    A generated clickstream through the example pack, digested
//	    (replay_test.go).
//
// Every input prints its send-commands, suppressions (a quiet_hours or send_window
// deferral as "defer", with its new time), rule errors and the user's next
// due time; times are UTC with the user's local time beside them.
func TestEngine(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := &harness{users: map[string]*state.User{}}
		datadriven.RunTest(t, path, h.run)
	})
}

type harness struct {
	eng   *engine.Engine
	users map[string]*state.User
	ids   int // for default messageIds
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	if d.Cmd != "pack" && d.Cmd != "replay" && h.eng == nil {
		d.Fatalf(t, "%s before pack", d.Cmd)
	}
	if allowed, ok := commandArgs()[d.Cmd]; ok {
		for _, a := range d.CmdArgs {
			if !slices.Contains(allowed, a.Key) {
				d.Fatalf(t, "%s takes no argument %s", d.Cmd, a.Key)
			}
		}
	}
	switch d.Cmd {
	case "pack":
		return h.pack(d)
	case "user":
		return h.user(t, d)
	case "event":
		return h.event(t, d)
	case "timer":
		return h.timer(t, d)
	case "advance":
		return h.advance(t, d)
	case "state":
		return h.state(t, d)
	case "replay":
		return h.replay(t, d)
	}
	d.Fatalf(t, "unknown command %q", d.Cmd)
	return ""
}

// commandArgs lists the arguments of every command except user, whose
// other arguments are traits.
func commandArgs() map[string][]string {
	return map[string][]string{
		"pack":    {},
		"event":   {"user", "at"},
		"timer":   {"user", "at"},
		"advance": {"to", "user"},
		"state":   {"user"},
		"replay":  {"users", "events", "seed", "limits"},
	}
}

func (h *harness) pack(d *datadriven.TestData) string {
	p, err := rules.LoadSources([]string{"pack.yaml"}, map[string][]byte{"pack.yaml": []byte(d.Input)}, rules.Options{})
	if err != nil {
		h.eng = nil // what follows needs a pack that loads
		return err.Error() + "\n"
	}
	h.eng = newEngine(p)
	h.users = map[string]*state.User{}
	return fmt.Sprintf("ok: %s, %s\n", plural(len(p.Triggers), "trigger"), plural(len(p.Aggregates), "aggregate"))
}

func (h *harness) user(t *testing.T, d *datadriven.TestData) string {
	var name string
	d.ScanArgs(t, "name", &name)
	at := "2026-01-01T00:00:00Z"
	d.MaybeScanArgs(t, "at", &at)
	traits := map[string]any{"email": name + "@example.com", "email_opt_in": true}
	for _, a := range d.CmdArgs {
		switch a.Key {
		case "name", "at":
		case "tz":
			traits["timezone"] = a.SingleVal(t)
		case "email":
			traits["email"] = value(a.SingleVal(t))
		case "opt_in":
			traits["email_opt_in"] = value(a.SingleVal(t))
		default:
			traits[a.Key] = value(a.SingleVal(t))
		}
	}
	for k, v := range traits {
		if v == "none" {
			delete(traits, k)
		}
	}
	return h.apply(t, d, map[string]any{
		"type": "identify", "userId": name, "timestamp": parseTime(t, d, at), "traits": traits,
	})
}

func (h *harness) event(t *testing.T, d *datadriven.TestData) string {
	env := map[string]any{}
	in := strings.TrimSpace(d.Input)
	if strings.HasPrefix(in, "{") {
		if err := json.Unmarshal([]byte(in), &env); err != nil {
			d.Fatalf(t, "event body: %v", err)
		}
	} else {
		env = envelope(t, d, in)
	}
	var user, at string
	if d.MaybeScanArgs(t, "user", &user) {
		env["userId"] = user
	}
	if d.MaybeScanArgs(t, "at", &at) {
		env["timestamp"] = parseTime(t, d, at)
	}
	return h.apply(t, d, env)
}

// envelope builds a Segment envelope from "TYPE KEY=VALUE...".
func envelope(t *testing.T, d *datadriven.TestData, line string) map[string]any {
	typ, args, err := datadriven.ParseLine(line)
	if err != nil {
		d.Fatalf(t, "event body: %v", err)
	}
	env := map[string]any{"type": typ}
	ctx := map[string]any{}
	page := map[string]any{}
	props := map[string]any{}
	for _, a := range args {
		var v any
		if len(a.Vals) == 1 {
			v = value(a.Vals[0])
		} else {
			vals := make([]any, len(a.Vals))
			for i, s := range a.Vals {
				vals[i] = value(s)
			}
			v = vals
		}
		switch a.Key {
		case "event", "name":
			env[a.Key] = a.SingleVal(t)
		case "id":
			env["messageId"] = a.SingleVal(t)
		case "path", "url":
			page[a.Key] = a.SingleVal(t)
		case "tz":
			ctx["timezone"] = a.SingleVal(t)
		default:
			props[a.Key] = v
		}
	}
	if len(page) > 0 {
		ctx["page"] = page
	}
	if len(ctx) > 0 {
		env["context"] = ctx
	}
	if len(props) > 0 {
		if typ == schema.TypeIdentify {
			env["traits"] = props
		} else {
			env["properties"] = props
		}
	}
	return env
}

// value reads a key=value value: a number, a boolean, or a string
// ("quoted" keeps a number-looking string a string).
func value(s string) any {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	return s
}

// apply decodes env as the drivers do and applies it to its user.
func (h *harness) apply(t *testing.T, d *datadriven.TestData, env map[string]any) string {
	if _, ok := env["messageId"]; !ok {
		h.ids++
		env["messageId"] = "m" + strconv.Itoa(h.ids)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		d.Fatalf(t, "encode event: %v", err)
	}
	ev, err := schema.DecodeEvent(raw)
	if err != nil {
		return "refused: " + err.Error() + "\n"
	}
	key := ev.UserKey()
	u := h.users[key]
	if u == nil {
		u = state.New(key)
		h.users[key] = u
	}
	if due, ok := u.NextDue(); ok && !due.After(ev.Timestamp) {
		d.Fatalf(t, "%s has a timer due %s, not after this event: fire it first (timer or advance)",
			key, schema.FormatTime(due))
	}
	res := h.eng.Event(u, &ev)
	var b strings.Builder
	switch {
	case res.Duplicate:
		b.WriteString("duplicate\n")
	case res.Erase:
		// The driver deletes the state and keeps an erasure marker.
		delete(h.users, key)
		b.WriteString("erase\n")
		return b.String()
	}
	h.print(&b, u, &res)
	return b.String()
}

func (h *harness) timer(t *testing.T, d *datadriven.TestData) string {
	u := h.lookup(t, d)
	var at time.Time
	var s string
	if d.MaybeScanArgs(t, "at", &s) {
		at = parseTime(t, d, s)
	} else {
		due, ok := u.NextDue()
		if !ok {
			return "no timer\n"
		}
		at = due
	}
	var b strings.Builder
	h.fire(t, d, &b, u, at)
	return b.String()
}

func (h *harness) advance(t *testing.T, d *datadriven.TestData) string {
	var s, only string
	d.ScanArgs(t, "to", &s)
	to := parseTime(t, d, s)
	d.MaybeScanArgs(t, "user", &only)
	var b strings.Builder
	for {
		var next *state.User
		var due time.Time
		for _, k := range h.keys() {
			if only != "" && k != only {
				continue
			}
			if at, ok := h.users[k].NextDue(); ok && !at.After(to) && (next == nil || at.Before(due)) {
				next, due = h.users[k], at
			}
		}
		if next == nil {
			break
		}
		h.fire(t, d, &b, next, due)
	}
	if b.Len() == 0 {
		return "no timer due\n"
	}
	return b.String()
}

// fire runs Engine.Timer at now and checks that it moved the user's timers
// past now, as drivers rely on.
func (h *harness) fire(t *testing.T, d *datadriven.TestData, b *strings.Builder, u *state.User, now time.Time) {
	fmt.Fprintf(b, "timer %s at %s\n", u.Key, h.when(u, now))
	res := h.eng.Timer(u, now)
	var out strings.Builder
	h.print(&out, u, &res)
	b.WriteString(indent(out.String()))
	if due, ok := u.NextDue(); ok && !due.After(now) {
		d.Fatalf(t, "engine left %s a timer due %s, not after %s", u.Key, schema.FormatTime(due), schema.FormatTime(now))
	}
}

func (h *harness) state(t *testing.T, d *datadriven.TestData) string {
	u := h.lookup(t, d)
	var b strings.Builder
	names := make([]string, 0, len(u.Triggers))
	for n := range u.Triggers {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		ts := u.Triggers[n]
		fmt.Fprintf(&b, "trigger %s: runs=%d sent=%d", n, ts.Runs, ts.Sent)
		if ts.Entered {
			b.WriteString(" entered")
		}
		if !ts.LastEnd.IsZero() {
			fmt.Fprintf(&b, " last_end=%s", schema.FormatTime(ts.LastEnd))
		}
		b.WriteString("\n")
		if r := ts.Run; r != nil {
			if r.Phase == state.PhaseWait {
				fmt.Fprintf(&b, "  run %d: waiting until %s", r.Seq, h.when(u, r.Due))
			} else {
				fmt.Fprintf(&b, "  run %d: step %d due %s", r.Seq, r.Step+1, h.when(u, r.Due))
			}
			fmt.Fprintf(&b, ", sent %d, entry %s at %s", r.Sent, r.Entry.Name, schema.FormatTime(r.Entry.Time))
			if r.Deferred {
				b.WriteString(", deferred")
			}
			if r.Variant != "" {
				fmt.Fprintf(&b, ", variant %s", r.Variant)
			}
			b.WriteString("\n")
		}
	}
	for _, s := range u.Sends {
		fmt.Fprintf(&b, "sent %s/%d at %s\n", s.Trigger, s.Step, h.when(u, s.At))
	}
	if b.Len() == 0 {
		return "empty\n"
	}
	return b.String()
}

func (h *harness) lookup(t *testing.T, d *datadriven.TestData) *state.User {
	var name string
	d.ScanArgs(t, "user", &name)
	u := h.users[name]
	if u == nil {
		d.Fatalf(t, "no user %s", name)
	}
	return u
}

func (h *harness) keys() []string {
	keys := make([]string, 0, len(h.users))
	for k := range h.users {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// print writes what one input produced: commands, then suppressions, each
// in the engine's order.
func (h *harness) print(b *strings.Builder, u *state.User, res *engine.Result) {
	for i := range res.Commands {
		c := &res.Commands[i]
		fmt.Fprintf(b, "send %s/%d %s at %s", c.Trigger, c.Step, c.Template, h.when(u, c.SendAt))
		if c.Variant != "" {
			fmt.Fprintf(b, " variant=%s", c.Variant)
		}
		if len(c.Data) > 0 {
			// encoding/json sorts map keys: the line is stable.
			data, _ := json.Marshal(c.Data)
			fmt.Fprintf(b, " data=%s", data)
		}
		b.WriteString("\n")
	}
	for i := range res.Suppressions {
		s := &res.Suppressions[i]
		verb := "suppress"
		if s.Reason.Deferral() {
			verb = "defer"
		}
		fmt.Fprintf(b, "%s %s/%d %s %s at %s", verb, s.Trigger, s.Step, s.Template, s.Reason, h.when(u, s.At))
		if !s.Until.IsZero() {
			fmt.Fprintf(b, " until %s", h.when(u, s.Until))
		}
		if s.Variant != "" {
			fmt.Fprintf(b, " variant=%s", s.Variant)
		}
		if s.Cap != "" {
			fmt.Fprintf(b, " cap=%s", s.Cap)
		}
		b.WriteString("\n")
	}
	for _, err := range res.Errors {
		fmt.Fprintf(b, "error: %v\n", err)
	}
	res.Evictions.Each(func(kind string, n int) {
		fmt.Fprintf(b, "evicted %d %s\n", n, kind)
	})
	if due, ok := u.NextDue(); ok {
		fmt.Fprintf(b, "next %s\n", h.when(u, due))
	} else {
		b.WriteString("next none\n")
	}
}

// when prints t in UTC and in the user's zone.
func (h *harness) when(u *state.User, t time.Time) string {
	return schema.FormatTime(t) + " (" + t.In(h.zone(u)).Format("Mon 01-02 15:04 MST") + ")"
}

// zone is the user's zone as the engine chooses it: the timezone trait,
// else the latest event's zone, else the policy's.
func (h *harness) zone(u *state.User) *time.Location {
	name := u.TraitZone()
	if name == "" {
		name = h.eng.Policy().Zone
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "" {
		return time.UTC
	}
	return loc
}

func parseTime(t *testing.T, d *datadriven.TestData, s string) time.Time {
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.Fatalf(t, "time %q: want RFC 3339, such as 2026-03-02T09:00:00Z", s)
	}
	return at
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "")
}
