package engine_test

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/processor/engine"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/schema/zoneinfo"
)

func testPack(t *testing.T, src string) *rules.Pack {
	t.Helper()
	p, err := rules.LoadSources([]string{"pack.yaml"}, map[string][]byte{"pack.yaml": []byte(src)}, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// input is one engine call: an event (fields of a Segment envelope), or
// with timer set, Engine.Timer at that time.
type input struct {
	at    string // RFC 3339
	timer bool
	ev    map[string]any
}

// play applies the inputs to a new user and lists what came out, one line
// per send-command or suppression.
func play(t *testing.T, eng *engine.Engine, user string, ins []input) (*state.User, []string) {
	t.Helper()
	u := state.New(user)
	var out []string
	for i, in := range ins {
		at, err := time.Parse(time.RFC3339, in.at)
		if err != nil {
			t.Fatal(err)
		}
		var res engine.Result
		if in.timer {
			res = eng.Timer(u, at)
		} else {
			m := map[string]any{"userId": user, "messageId": fmt.Sprintf("m%d", i), "timestamp": in.at}
			for k, v := range in.ev {
				m[k] = v
			}
			raw, _ := json.Marshal(m)
			ev, err := schema.DecodeEvent(raw)
			if err != nil {
				t.Fatalf("input %d: %v", i, err)
			}
			res = eng.Event(u, &ev)
		}
		for _, err := range res.Errors {
			t.Errorf("input %d: rule error: %v", i, err)
		}
		for _, s := range res.Suppressions {
			line := fmt.Sprintf("suppress %s %s at %s", s.Trigger, s.Reason, schema.FormatTime(s.At))
			if !s.Until.IsZero() {
				line += " until " + schema.FormatTime(s.Until)
			}
			out = append(out, line)
		}
		for _, c := range res.Commands {
			line := fmt.Sprintf("send %s at %s", c.Trigger, schema.FormatTime(c.SendAt))
			if len(c.Data) > 0 {
				b, _ := json.Marshal(c.Data)
				line += " " + string(b)
			}
			out = append(out, line)
		}
	}
	return u, out
}

const zonesPack = `
policy:
  timezone: UTC
  frequency: {per_day: 1, per_week: 0}
  quiet_hours: {start: "21:00", end: "08:00"}
triggers:
  - name: welcome
    intent: high
    on: [Signed In]
    when: "true"
    template: welcome
  - name: receipt
    intent: high
    on: [Order Completed]
    when: "true"
    quiet_hours: false
    template: receipt
`

func traits(zone string) map[string]any {
	t := map[string]any{"email": "a@example.com", "email_opt_in": true}
	if zone != "" {
		t["timezone"] = zone
	}
	return map[string]any{"type": "identify", "traits": t}
}

var (
	signedIn = map[string]any{"type": "track", "event": "Signed In"}
	ordered  = map[string]any{"type": "track", "event": "Order Completed"}
)

// Quiet hours and caps are decided with the zone rules embedded in the
// binary, whatever the host has and whatever ZONEINFO names. Each case is
// in a zone whose rules changed recently, at a moment an older database
// decides the other way (in the comments).
func TestZonesFromEmbeddedDatabase(t *testing.T) {
	pack := testPack(t, zonesPack)
	cases := []struct {
		name string
		ins  []input
		want []string
	}{{
		// Almaty is UTC+5 since 2024-03-01: 07:30, quiet (UTC+6: 08:30).
		name: "Asia/Almaty trait: quiet at 07:30",
		ins: []input{
			{at: "2026-03-02T02:29:00Z", ev: traits("Asia/Almaty")},
			{at: "2026-03-02T02:30:00Z", ev: signedIn},
			{at: "2026-03-02T03:00:00Z", timer: true},
		},
		want: []string{
			"suppress welcome quiet_hours at 2026-03-02T02:30:00Z until 2026-03-02T03:00:00Z",
			"send welcome at 2026-03-02T03:00:00Z",
		},
	}, {
		// Nuuk is UTC-2 since 2023: 08:30, sent at once (UTC-3: 07:30).
		name: "America/Nuuk event context: sent at 08:30",
		ins: []input{
			{at: "2026-01-15T10:29:00Z", ev: traits("")},
			{at: "2026-01-15T10:30:00Z", ev: map[string]any{"type": "track", "event": "Signed In", "context": map[string]any{"timezone": "America/Nuuk"}}},
		},
		want: []string{"send welcome at 2026-01-15T10:30:00Z"},
	}, {
		// Mexico City keeps UTC-6 all year since 2022: 07:30 in July,
		// quiet (with summer time: 08:30).
		name: "America/Mexico_City trait: quiet at 07:30 in July",
		ins: []input{
			{at: "2026-07-01T13:29:00Z", ev: traits("America/Mexico_City")},
			{at: "2026-07-01T13:30:00Z", ev: signedIn},
			{at: "2026-07-01T14:00:00Z", timer: true},
		},
		want: []string{
			"suppress welcome quiet_hours at 2026-07-01T13:30:00Z until 2026-07-01T14:00:00Z",
			"send welcome at 2026-07-01T14:00:00Z",
		},
	}, {
		// One a day in Almaty: 23:30 and 00:30 are two local days (UTC+6:
		// both on the 3rd, the second capped).
		name: "Asia/Almaty trait: the cap's day ends at local midnight",
		ins: []input{
			{at: "2026-03-02T18:29:00Z", ev: traits("Asia/Almaty")},
			{at: "2026-03-02T18:30:00Z", ev: ordered},
			{at: "2026-03-02T19:30:00Z", ev: ordered},
			{at: "2026-03-02T19:40:00Z", ev: ordered},
		},
		want: []string{
			"send receipt at 2026-03-02T18:30:00Z",
			"send receipt at 2026-03-02T19:30:00Z",
			"suppress receipt frequency_cap at 2026-03-02T19:40:00Z",
		},
	}}

	bogus := filepath.Join(t.TempDir(), "zoneinfo.zip")
	if err := os.WriteFile(bogus, []byte("not a zip"), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := zoneinfo.New()
	// The stale database comes first: the runtime reads ZONEINFO once, at
	// its first time.LoadLocation, so an engine that called it would load
	// these zones and fail every case.
	for _, env := range []struct{ name, zoneinfo string }{
		{"stale", staleZoneinfo(t)}, {"bogus", bogus}, {"missing", filepath.Join(t.TempDir(), "none.zip")}, {"unset", ""},
	} {
		t.Run("ZONEINFO="+env.name, func(t *testing.T) {
			t.Setenv("ZONEINFO", env.zoneinfo)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					// The default database and a shared one decide alike.
					for _, opts := range []engine.Options{{}, {Zones: shared}} {
						_, got := play(t, engine.New(pack, opts), "u1", c.ins)
						if !slices.Equal(got, c.want) {
							t.Errorf("got\n  %q\nwant\n  %q", got, c.want)
						}
					}
				})
			}
		})
	}
}

const scorePack = `
policy:
  quiet_hours: null
  frequency: {per_day: 0, per_week: 0}
  score: {half_life: 7d, weights: {Signed In: 8}}
triggers:
  - name: lapsed
    intent: low
    on: [Signed In]
    when: "true"
    wait: 14d
    recheck: user.score < 2.5
    template: lapsed
    data:
      score: user.score
`

// Rules read the score as of their evaluation's now: on a timer 14 days
// after a sign-in worth 8 with a 7-day half-life it is 2, not the 8 last
// written by the event.
func TestScoreAtNow(t *testing.T) {
	eng := engine.New(testPack(t, scorePack), engine.Options{})
	profile := input{at: "2026-03-01T00:00:00Z", ev: traits("UTC")}
	cases := []struct {
		name  string
		ins   []input
		want  []string
		score float64
	}{{
		name: "a timer 14 days later sees the decayed score",
		ins: []input{
			profile,
			{at: "2026-03-02T09:00:00Z", ev: signedIn},
			{at: "2026-03-16T09:00:00Z", timer: true},
		},
		want:  []string{`send lapsed at 2026-03-16T09:00:00Z {"score":2}`},
		score: 2,
	}, {
		name: "an event between decays it on the way",
		ins: []input{
			profile,
			{at: "2026-03-02T09:00:00Z", ev: signedIn},
			{at: "2026-03-09T09:00:00Z", ev: map[string]any{"type": "page", "context": map[string]any{"page": map[string]any{"path": "/blog"}}}},
			{at: "2026-03-16T09:00:00Z", timer: true},
		},
		want:  []string{`send lapsed at 2026-03-16T09:00:00Z {"score":2}`},
		score: 2,
	}, {
		// 8·2^-2 + 8·2^(-13/7) ≈ 4.2: still engaged, nothing is sent.
		name: "a second sign-in keeps it above the threshold",
		ins: []input{
			profile,
			{at: "2026-03-02T09:00:00Z", ev: signedIn},
			{at: "2026-03-03T09:00:00Z", ev: signedIn},
			{at: "2026-03-16T09:00:00Z", timer: true},
		},
		score: 8*math.Exp2(-2) + 8*math.Exp2(-13.0/7),
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, got := play(t, eng, "u1", c.ins)
			if !slices.Equal(got, c.want) {
				t.Errorf("got\n  %q\nwant\n  %q", got, c.want)
			}
			if d := u.Score - c.score; d > 1e-9 || d < -1e-9 {
				t.Errorf("stored score %v, want %v", u.Score, c.score)
			}
			if want := "2026-03-16T09:00:00Z"; schema.FormatTime(u.ScoreAt) != want {
				t.Errorf("score as of %s, want %s", schema.FormatTime(u.ScoreAt), want)
			}
		})
	}
}

// A late event adds the weight it has left at the stored score's time, so
// the score does not depend on the order events arrive in.
func TestScoreLateEvent(t *testing.T) {
	eng := engine.New(testPack(t, scorePack), engine.Options{})
	early := input{at: "2026-03-02T09:00:00Z", ev: signedIn}
	later := input{at: "2026-03-09T09:00:00Z", ev: map[string]any{"type": "track", "event": "Signed In", "messageId": "late"}}
	inOrder, _ := play(t, eng, "u1", []input{early, later})
	reversed, _ := play(t, eng, "u1", []input{later, early})
	for _, u := range []*state.User{inOrder, reversed} {
		if u.Score != 12 || schema.FormatTime(u.ScoreAt) != later.at {
			t.Errorf("score %v as of %s, want 12 as of %s", u.Score, schema.FormatTime(u.ScoreAt), later.at)
		}
	}
}

// staleZoneinfo writes a zone database as an older or wrong host might
// have: Asia/Almaty at UTC+6 all year, America/Nuuk at UTC-3,
// America/Mexico_City with summer time.
func staleZoneinfo(t *testing.T) string {
	t.Helper()
	src, err := zip.OpenReader("../../schema/zoneinfo/zoneinfo.zip")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	read := func(name string) []byte {
		f, err := src.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	stale := map[string]string{
		"Asia/Almaty":         "Asia/Omsk",
		"America/Nuuk":        "America/Sao_Paulo",
		"America/Mexico_City": "America/Chicago",
	}
	path := filepath.Join(t.TempDir(), "stale.zip")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := zip.NewWriter(out)
	for _, f := range src.File {
		data := read(f.Name)
		if as, ok := stale[f.Name]; ok {
			data = read(as)
		}
		fw, err := w.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
