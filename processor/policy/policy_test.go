package policy_test

import (
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

	"github.com/microtrigger/microtrigger/processor/policy"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/schema"
)

// TestPolicy runs the files of testdata/, one per decision. Commands (one
// input per line, times in RFC 3339):
//
//	period zone=Z                       <time>...
//	capacity zone=Z per_day=N per_week=N
//	                                    sent <time> | reserved <time> | check <time>
//	quiet start=HH:MM end=HH:MM zone=Z  <time>...
//	rank                                <name> <intent> <priority>...
//	assign trigger=T [holdout=S] [variants=(A:1, B:1)]
//	                                    <user key>... | users=N (a count per arm)
//	reachable [required=true|false] [trait=NAME]
//	                                    [email=E] [TRAIT=true|false] [unsubscribed] [bounced]
//	cooling cooldown=D [last_end=T]     <time>...
//	clock                               <HH:MM>...
func TestPolicy(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var b strings.Builder
			switch d.Cmd {
			case "period":
				loc := zone(t, d)
				for _, l := range lines(d) {
					at := parseTime(t, d, l)
					p := policy.PeriodOf(at, loc)
					fmt.Fprintf(&b, "%s: day %s, week %d-W%02d\n", when(at, loc),
						time.Unix(p.Day*86400, 0).UTC().Format("2006-01-02"), p.Week/100, p.Week%100)
				}
			case "capacity":
				loc := zone(t, d)
				var c policy.Config
				d.ScanArgs(t, "per_day", &c.PerDay)
				d.ScanArgs(t, "per_week", &c.PerWeek)
				var sends []state.Send
				var reserved []time.Time
				for _, l := range lines(d) {
					kind, ts, _ := strings.Cut(l, " ")
					at := parseTime(t, d, ts)
					switch kind {
					case "sent":
						sends = append(sends, state.Send{At: at, Trigger: "t", Step: 1})
					case "reserved":
						reserved = append(reserved, at)
					case "check":
						r, cap := policy.Capacity(&c, sends, reserved, at, loc)
						if r == "" {
							r = "fits"
						} else {
							r += " (" + schema.SuppressReason(cap) + ")"
						}
						fmt.Fprintf(&b, "%s: %s\n", when(at, loc), r)
					default:
						d.Fatalf(t, "want sent, reserved or check: %q", l)
					}
				}
			case "quiet":
				loc := zone(t, d)
				q := policy.QuietHours{Start: clock(t, d, "start"), End: clock(t, d, "end")}
				for _, l := range lines(d) {
					at := parseTime(t, d, l)
					if until, ok := q.Until(at, loc); ok {
						fmt.Fprintf(&b, "%s: quiet until %s\n", when(at, loc), when(until, loc))
					} else {
						fmt.Fprintf(&b, "%s: not quiet\n", when(at, loc))
					}
				}
			case "window":
				loc := zone(t, d)
				w := policy.SendWindow{Start: clock(t, d, "start"), End: clock(t, d, "end")}
				var days []string
				d.ScanArgs(t, "days", &days)
				for _, s := range days {
					wd, err := policy.ParseDay(s)
					if err != nil {
						d.Fatalf(t, "days: %v", err)
					}
					w.Days[wd] = true
				}
				for _, l := range lines(d) {
					at := parseTime(t, d, l)
					if opens, outside := w.Next(at, loc); outside {
						fmt.Fprintf(&b, "%s: outside, opens %s\n", when(at, loc), when(opens, loc))
					} else {
						fmt.Fprintf(&b, "%s: inside\n", when(at, loc))
					}
				}
			case "category_cap":
				// category_cap max=N per=D, then sent T / reserved T / check T
				var c policy.Cap
				var per string
				d.ScanArgs(t, "max", &c.Max)
				d.ScanArgs(t, "per", &per)
				dur, err := time.ParseDuration(per)
				if err != nil {
					d.Fatalf(t, "per: %v", err)
				}
				c.Per = dur
				var sent, reserved []time.Time
				for _, l := range lines(d) {
					kind, ts, _ := strings.Cut(l, " ")
					at := parseTime(t, d, ts)
					switch kind {
					case "sent":
						sent = append(sent, at)
					case "reserved":
						reserved = append(reserved, at)
					case "check":
						r := "fits"
						if c.Full(sent, reserved, at) {
							r = "full"
						}
						fmt.Fprintf(&b, "%s: %s\n", schema.FormatTime(at), r)
					default:
						d.Fatalf(t, "want sent, reserved or check: %q", l)
					}
				}
			case "rank":
				var ranks []policy.Rank
				for _, l := range lines(d) {
					var name, intent string
					var prio int
					if _, err := fmt.Sscan(l, &name, &intent, &prio); err != nil {
						d.Fatalf(t, "want NAME INTENT PRIORITY: %q", l)
					}
					ranks = append(ranks, policy.Rank{Intent: policy.IntentRank(intent), Priority: prio, Name: name})
				}
				slices.SortStableFunc(ranks, func(a, b policy.Rank) int {
					switch {
					case a.Before(b):
						return -1
					case b.Before(a):
						return 1
					}
					return 0
				})
				for _, r := range ranks {
					fmt.Fprintf(&b, "%s (intent %d, priority %d)\n", r.Name, r.Intent, r.Priority)
				}
			case "assign":
				var trigger string
				var holdout float64
				d.ScanArgs(t, "trigger", &trigger)
				d.MaybeScanArgs(t, "holdout", &holdout)
				var variants []policy.Variant
				if a, ok := d.Arg("variants"); ok {
					for _, v := range a.Vals {
						name, w, _ := strings.Cut(v, ":")
						weight, err := strconv.ParseFloat(w, 64)
						if err != nil {
							d.Fatalf(t, "variant %q: want NAME:WEIGHT", v)
						}
						variants = append(variants, policy.Variant{Name: name, Weight: weight})
					}
				}
				arm := func(key string) string {
					v, held := policy.Assign(key, trigger, holdout, variants)
					switch {
					case held:
						return "held out"
					case v == "":
						return "treated"
					}
					return v
				}
				for _, l := range lines(d) {
					if n, ok := strings.CutPrefix(l, "users="); ok {
						users, err := strconv.Atoi(n)
						if err != nil {
							d.Fatalf(t, "users=%s: want a count", n)
						}
						counts := map[string]int{}
						for i := range users {
							counts[arm(fmt.Sprintf("user-%05d", i))]++
						}
						keys := make([]string, 0, len(counts))
						for k := range counts {
							keys = append(keys, k)
						}
						slices.Sort(keys)
						for _, k := range keys {
							fmt.Fprintf(&b, "%s: %d\n", k, counts[k])
						}
						continue
					}
					fmt.Fprintf(&b, "%s: %s\n", l, arm(l))
				}
			case "reachable":
				c := policy.Config{ConsentRequired: true, ConsentTrait: "email_opt_in"}
				d.MaybeScanArgs(t, "required", &c.ConsentRequired)
				d.MaybeScanArgs(t, "trait", &c.ConsentTrait)
				for _, l := range lines(d) {
					u := userOf(t, d, l)
					r := policy.Reachable(u, &c)
					if r == "" {
						r = "reachable"
					}
					fmt.Fprintf(&b, "%s: %s\n", l, r)
				}
			case "cooling":
				var cd, last string
				d.ScanArgs(t, "cooldown", &cd)
				cooldown, err := rules.ParseDuration(cd)
				if err != nil {
					d.Fatalf(t, "cooldown: %v", err)
				}
				var ts *state.Trigger
				if d.MaybeScanArgs(t, "last_end", &last) {
					ts = &state.Trigger{LastEnd: parseTime(t, d, last)}
				}
				for _, l := range lines(d) {
					at := parseTime(t, d, l)
					if policy.Cooling(ts, cooldown, at) {
						fmt.Fprintf(&b, "%s: cooling\n", l)
					} else {
						fmt.Fprintf(&b, "%s: may start\n", l)
					}
				}
			case "clock":
				for _, l := range lines(d) {
					m, err := policy.ParseClock(l)
					if err != nil {
						fmt.Fprintf(&b, "%q: %v\n", l, err)
					} else {
						fmt.Fprintf(&b, "%q: %d minutes\n", l, m)
					}
				}
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
			}
			return b.String()
		})
	})
}

// userOf builds a user from "email=E TRAIT=true|false unsubscribed bounced".
func userOf(t *testing.T, d *datadriven.TestData, l string) *state.User {
	u := state.New("u")
	u.Traits = map[string]any{}
	for _, f := range strings.Fields(l) {
		k, v, ok := strings.Cut(f, "=")
		switch {
		case f == "unsubscribed":
			u.Unsubscribed = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		case f == "bounced":
			u.Bounced = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		case f == "nobody":
		case !ok:
			d.Fatalf(t, "want KEY=VALUE, unsubscribed or bounced: %q", f)
		case v == "true" || v == "false":
			u.Traits[k] = v == "true"
		default:
			u.Traits[k] = v
		}
	}
	return u
}

func lines(d *datadriven.TestData) []string {
	var out []string
	for _, l := range strings.Split(d.Input, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func zone(t *testing.T, d *datadriven.TestData) *time.Location {
	var name string
	d.ScanArgs(t, "zone", &name)
	loc, err := time.LoadLocation(name)
	if err != nil {
		d.Fatalf(t, "zone: %v", err)
	}
	return loc
}

func clock(t *testing.T, d *datadriven.TestData, key string) int {
	var s string
	d.ScanArgs(t, key, &s)
	m, err := policy.ParseClock(s)
	if err != nil {
		d.Fatalf(t, "%s: %v", key, err)
	}
	return m
}

func parseTime(t *testing.T, d *datadriven.TestData, s string) time.Time {
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.Fatalf(t, "time %q: want RFC 3339, such as 2026-03-02T09:00:00Z", s)
	}
	return at
}

// when prints t in UTC and in loc.
func when(t time.Time, loc *time.Location) string {
	return schema.FormatTime(t) + " (" + t.In(loc).Format("Mon 01-02 15:04 MST") + ")"
}

// TestRankIsStrictOrder checks that Before orders every pair of distinct
// ranks one way only, and agrees with intent, then priority, then name.
func TestRankIsStrictOrder(t *testing.T) {
	var ranks []policy.Rank
	for _, intent := range []string{schema.IntentHigh, schema.IntentMid, schema.IntentLow} {
		for _, prio := range []int{-5, 0, 10} {
			for _, name := range []string{"a", "b"} {
				ranks = append(ranks, policy.Rank{Intent: policy.IntentRank(intent), Priority: prio, Name: name})
			}
		}
	}
	for i, a := range ranks {
		if a.Before(a) {
			t.Errorf("%+v is before itself", a)
		}
		for j, b := range ranks {
			if i == j {
				continue
			}
			if a.Before(b) == b.Before(a) {
				t.Errorf("%+v and %+v: Before is %v both ways", a, b, a.Before(b))
			}
			// Transitivity over every triple.
			for _, c := range ranks {
				if a.Before(b) && b.Before(c) && !a.Before(c) {
					t.Errorf("%+v < %+v < %+v but not %+v < %+v", a, b, c, a, c)
				}
			}
		}
	}
}

// TestAssignStable checks what every driver relies on: the same user and
// trigger always get the same answer, whatever else was assigned before,
// and the holdout draw does not depend on the variants.
func TestAssignStable(t *testing.T) {
	variants := []policy.Variant{{Name: "A", Weight: 1}, {Name: "B", Weight: 1}}
	first := map[string]string{}
	arm := func(key, trigger string, holdout float64, vs []policy.Variant) string {
		v, held := policy.Assign(key, trigger, holdout, vs)
		if held {
			return "held"
		}
		return v
	}
	for i := range 1000 {
		key := fmt.Sprintf("user-%d", i)
		first[key] = arm(key, "pricing", 0.1, variants)
	}
	for i := 999; i >= 0; i-- {
		key := fmt.Sprintf("user-%d", i)
		if got := arm(key, "pricing", 0.1, variants); got != first[key] {
			t.Fatalf("%s: %s, then %s", key, first[key], got)
		}
		_, heldWith := policy.Assign(key, "pricing", 0.1, variants)
		_, heldWithout := policy.Assign(key, "pricing", 0.1, nil)
		if heldWith != heldWithout {
			t.Fatalf("%s: holdout depends on the variants", key)
		}
	}
}

// TestQuietUntilEndsTheQuietPeriod checks Until against its definition
// around daylight-saving changes, including zones that shift by 30 minutes
// and windows that end inside the hour a change skips or repeats: the time
// it returns is later than t and not quiet, and every minute in between is
// quiet.
func TestQuietUntilEndsTheQuietPeriod(t *testing.T) {
	windows := []policy.QuietHours{
		{Start: 21 * 60, End: 8 * 60},
		{Start: 21 * 60, End: 2*60 + 30},
		{Start: 0, End: 3 * 60},
		{Start: 1*60 + 45, End: 2*60 + 15},
		{Start: 22 * 60, End: 1*60 + 30},
	}
	changes := map[string][]string{
		"Europe/Berlin":       {"2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z"},
		"America/Los_Angeles": {"2026-03-08T10:00:00Z", "2026-11-01T09:00:00Z"},
		"Australia/Lord_Howe": {"2026-04-04T15:00:00Z", "2026-10-03T15:30:00Z"},
		"America/Santiago":    {"2026-04-05T03:00:00Z", "2026-09-06T04:00:00Z"},
	}
	zones := make([]string, 0, len(changes))
	for z := range changes {
		zones = append(zones, z)
	}
	slices.Sort(zones)
	quiet := func(q policy.QuietHours, at time.Time, loc *time.Location) bool {
		l := at.In(loc)
		return q.Contains(l.Hour()*60 + l.Minute())
	}
	for _, name := range zones {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range changes[name] {
			change, _ := time.Parse(time.RFC3339, c)
			for _, q := range windows {
				// Every 11 minutes from 12 hours before the change to 4
				// hours after it.
				for at := change.Add(-12 * time.Hour); at.Before(change.Add(4 * time.Hour)); at = at.Add(11 * time.Minute) {
					until, ok := q.Until(at, loc)
					if ok != quiet(q, at, loc) {
						t.Fatalf("%s %v at %s: Until says quiet=%v", name, q, when(at, loc), ok)
					}
					if !ok {
						continue
					}
					if !until.After(at) || quiet(q, until, loc) {
						t.Fatalf("%s %v at %s: quiet until %s, which is not a later time outside the window",
							name, q, when(at, loc), when(until, loc))
					}
					for m := at.Truncate(time.Minute).Add(time.Minute); m.Before(until); m = m.Add(time.Minute) {
						if !quiet(q, m, loc) {
							t.Fatalf("%s %v at %s: quiet until %s, but %s is not quiet",
								name, q, when(at, loc), when(until, loc), when(m, loc))
						}
					}
				}
			}
		}
	}
}
