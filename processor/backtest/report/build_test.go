package report

import (
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/schema"
)

func TestEntryOf(t *testing.T) {
	for cause, want := range map[string]string{
		"m-1":             "m-1",
		"timer:m-1:2":     "m-1",
		"timer:a:b:c:3":   "a:b:c",
		"sha256:abcd":     "sha256:abcd",
		"timer:sha256:ab": "sha256",
	} {
		if got := entryOf(cause); got != want {
			t.Errorf("entryOf(%q) = %q, want %q", cause, got, want)
		}
	}
}

// TestBuildRuns checks run grouping and conversion windows on records made
// by hand: a sequence of three sends is one run, timed at its first send;
// a conversion at the send, or after the window, does not count.
func TestBuildRuns(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	pack, err := rules.LoadSources([]string{"t.yaml"}, map[string][]byte{"t.yaml": []byte(`
triggers:
  - name: seq
    intent: mid
    on: [Product Added]
    steps:
      - {template: a, delay: 0s}
      - {template: b, delay: 1h}
      - {template: c, delay: 2h}
`)}, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cmd := func(user string, step int, cause string, at time.Duration) schema.SendCommand {
		return schema.SendCommand{ID: user + cause, UserID: user, Trigger: "seq", Step: step, Cause: cause, SendAt: t0.Add(at)}
	}
	src := &Source{
		End: t0.Add(30 * 24 * time.Hour),
		Conversions: Conversions{Event: "Order Completed", Window: 24 * time.Hour, ByUser: map[string][]time.Time{
			"u1": {t0.Add(23 * time.Hour)},                    // 23h after the run's first send: converts
			"u2": {t0, t0.Add(25 * time.Hour)},                // at the send, then too late: does not
			"u3": {t0.Add(-time.Hour), t0.Add(2 * time.Hour)}, // converts, 2h
		}},
		A: Outcome{Rules: "r", Pack: pack, Commands: []schema.SendCommand{
			cmd("u1", 1, "e1", 0), cmd("u1", 2, "timer:e1:2", time.Hour), cmd("u1", 3, "timer:e1:3", 3*time.Hour),
			cmd("u2", 1, "e2", 0),
			cmd("u3", 2, "timer:e3:2", 0), // the first step was capped: the run starts here
		}},
	}
	r := Build(src)
	tr := r.Run.Triggers[0]
	if tr.Sends != 5 || tr.Sent.Runs != 3 || tr.Sent.Converted != 2 || tr.Users != 3 {
		t.Fatalf("sends %d, runs %d, converted %d, users %d", tr.Sends, tr.Sent.Runs, tr.Sent.Converted, tr.Users)
	}
	if got := tr.SendsByStep; len(got) != 3 || got[0] != 2 || got[1] != 2 || got[2] != 1 {
		t.Errorf("sends by step %v", got)
	}
	if d := tr.Sent.TimeToConversion; d == nil || d.Median != (23*3600+2*3600)/2 {
		t.Errorf("time to conversion %+v", d)
	}
	if tr.Effect != nil {
		t.Error("an effect without a holdout group")
	}

	// Compared with a pack that has another trigger only.
	other, err := rules.LoadSources([]string{"t.yaml"}, map[string][]byte{"t.yaml": []byte(`
triggers:
  - name: other
    intent: low
    on: [page]
    template: x
`)}, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src.B = &Outcome{Rules: "b", Pack: other}
	r = Build(src)
	if c := r.Compare; c == nil || len(c.Triggers) != 2 || !c.Triggers[0].InB || c.Triggers[0].InA ||
		c.Triggers[1].Sends != (Delta{A: 5, B: 0, Delta: -5}) || c.Totals.Commands.OnlyA != 5 {
		t.Errorf("comparison %+v", r.Compare)
	}
}
