package backtest

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/processor/backtest/report"
	"github.com/microtrigger/microtrigger/processor/policy"
	"github.com/microtrigger/microtrigger/processor/rules"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files of testdata/golden")

// The golden backtest replays testdata/clickstream.jsonl through the pack
// of testdata/rules and compares report.json, the summary table and the
// output records with testdata/golden. Every figure can be worked out by
// hand from the clickstream; this is how. T is 2026-03-02T09:00:00Z (a
// Monday); the range is 08:00 that day (--from) to T+9d (--to).
//
// Pack: policy per_day 1, quiet hours 21:00–08:00 UTC, consent through
// email_opt_in, grace 0. pricing-revisit fires at once on a second /pricing
// view within 7 days (holdout 50%, variants A/B 50/50, cooldown 7d).
// cart-abandonment waits 1h after Product Added, then sends cart-reminder
// unless Checkout Started was seen, and cart-last-call 24h later; Order
// Completed exits it. Conversion: Order Completed within 7d.
//
// Holdout and variant assignment are hashes of user and trigger
// (policy.Assign; TestGoldenAssignments checks the ones used here):
// held out ann(A) ben(B) cat(A) dan(A); sent eve(B) hal(A) ivy(A) jon(A)
// kim(B) lea(B) zed(A). (The variant of a held-out user is the one it would
// have had.)
//
// Input: 58 lines, one blank: 57 records. Refused 2 (line 30: bad
// timestamp, line 47: not JSON). Out of range 2 (line 1 at 07:00, line 58
// at T+10d). Events 53. The second eve-2 (line 25) is a duplicate; zed-5
// (line 46, 10:30 after an 11:00 event, grace 0) is late. Conversion
// events: kim, hal, ola, ann, mo, ivy, eve = 7.
//
// pricing-revisit, users ann ben cat dan eve hal ivy kim zed view /pricing
// at T and T+10m; at T+10m:
//   - hal, ivy (A), eve, kim (B) are sent pricing-help: 4 sends.
//   - ann, ben, cat, dan: holdout (4 records, 4 holdout runs).
//   - zed has no consent: no_consent (variant A).
//   - lea views at 11:00 and 11:10, while her cart sequence has sent and
//     has a step left (and pricing does not outrank it): in_other_sequence
//     (variant B).
//   - jon views at 21:00 and 21:30: quiet hours defer the send to 08:00 on
//     T+1d (quiet_hours record with until, then the send): 5 sends in all.
//   - hal views again at T+1d: cooldown (one record; the view at T+1d+10m
//     adds none). Cooldown records carry no variant.
//
// Suppressed 7 (holdout 4, no_consent 1, in_other_sequence 1, cooldown 1)
// plus 1 deferred. By variant: A holdout 3 + no_consent 1 = 4, 1 deferred;
// B holdout 1 + in_other_sequence 1 = 2.
//
// Conversions (run converts when an Order Completed follows its first send
// by more than 0 and at most 7d):
//   - hal at T+1h: 50m after his send (3000 s): converted.
//   - ivy at T+2d+10m: exactly 2d (172800 s): converted.
//   - kim at T+5m: before her send: not converted. eve at T+8d+10m: after
//     the window: not converted. jon: none.
//   - holdout: ann at T+1d+10m, 1d (86400 s) after her would-be send:
//     converted; ben, cat, dan: none.
//
// Sent 2/5 = 0.4, holdout 1/4 = 0.25, difference +0.15; Newcombe's hybrid
// score interval from the Wilson intervals of 2/5 [0.117621, 0.769276] and
// 1/4 [0.045587, 0.699358]: 0.15 − √((0.4−0.117621)² + (0.699358−0.25)²) =
// −0.380717, 0.15 + √((0.769276−0.4)² + (0.25−0.045587)²) = 0.572077.
// Variant A: 2/3 vs 1/4 (the whole holdout group): +0.416667
// [−0.225681, 0.756788]; variant B: 0/2 vs 1/4: −0.25 [−0.699358, 0.438657].
// Time to conversion of the sent runs 3000 s and 172800 s: median and mean
// 87900, p25 45450, p75 130350 (linear between closest ranks).
// Funnel: fired 11 (the 9 at T+10m, lea, jon), emailed 5, converted 2.
//
// cart-abandonment (Product Added at T by mo, nia, ola, lea; kim at
// T+20m):
//   - mo, ola, lea: cart-reminder at 10:00 (timer of the 1h wait).
//   - nia started checkout at 09:30: the recheck fails, no send, no record.
//   - ola orders at 11:00: her pending cart-last-call is exited (record at
//     step 2). Converted after 1h (3600 s).
//   - kim's reminder at 10:20 hits the cap (her pricing send at 09:10 was
//     today's one): frequency_cap at step 1; the run goes on and sends
//     cart-last-call at T+1d+1h20m, its first send.
//   - mo and lea get cart-last-call at T+1d+1h. mo orders at T+1d+5h, 28h
//     (100800 s) after his first send: converted.
//
// Sends 6 (by step 3/3), users 4, runs 4, converted 2 (0.5), suppressed 2
// (exited 1, frequency_cap 1), no holdout so no effect. Time to conversion
// 3600 and 100800 s: median and mean 52200, p25 27900, p75 76500.
// Funnel: fired 4 (mo, ola, lea, kim), emailed 4, converted 2.
//
// Totals: 11 sends to 8 users (eve hal ivy jon kim, lea mo ola), 9
// suppressed, 1 deferred, 4 converted runs. Timers fired 9: the 1h waits of
// mo nia ola lea (10:00) and kim (10:20), jon's deferral (T+1d 08:00), the
// last calls of mo, lea (T+1d+1h) and kim (T+1d+1h20m). Sends per day: T
// 4 pricing + 3 cart, T+1d 1 pricing + 3 cart. Time-to-conversion buckets:
// ≤ 1h 2 (3000, 3600 s), ≤ 2d 2 (100800, 172800 s).
//
// The compared pack (testdata/rules-noholdout) is the same without the
// holdout: ann, ben, cat, dan are sent pricing-help too (ann converts), so
// B has 9 pricing sends (5 the same commands as A, 4 only in B), 3/9
// converted, and no holdout records; cart-abandonment is unchanged.
func goldenConfig(t *testing.T, out string) Config {
	t.Helper()
	load := func(dir string) *rules.Pack {
		p, err := rules.Load(os.DirFS(dir), rules.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	return Config{
		Pack: load("testdata/rules"), Rules: "testdata/rules",
		Compare: load("testdata/rules-noholdout"), CompareRules: "testdata/rules-noholdout",
		File:     "testdata/clickstream.jsonl",
		From:     time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC),
		To:       time.Date(2026, 3, 11, 9, 0, 0, 0, time.UTC),
		OutDir:   out,
		InMemory: true,
	}
}

// goldenFiles are the outputs compared with testdata/golden.
var goldenFiles = []string{
	CommandsFile, SuppressionsFile, ReportJSONFile,
	filepath.Join(CompareDir, CommandsFile), filepath.Join(CompareDir, SuppressionsFile),
}

func TestGolden(t *testing.T) {
	out := t.TempDir()
	res, err := Run(context.Background(), goldenConfig(t, out))
	if err != nil {
		t.Fatal(err)
	}
	var summary bytes.Buffer
	if err := report.WriteSummary(&summary, res.Report); err != nil {
		t.Fatal(err)
	}
	check := func(name string, got []byte) {
		t.Helper()
		path := filepath.Join("testdata", "golden", name)
		if *rewrite {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -rewrite to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (run with -rewrite to accept):\n%s", name, path, lineDiff(want, got))
		}
	}
	check("summary.txt", summary.Bytes())
	for _, name := range goldenFiles {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		check(name, got)
	}
	// Spot checks of the hand computation above, so a rewrite cannot
	// silently accept a wrong number.
	r := res.Report
	if r.Input.Records != 57 || r.Input.Events != 53 || r.Input.Refused != 2 || r.Input.OutOfRange != 2 {
		t.Errorf("input: %+v", r.Input)
	}
	tr := map[string]report.Trigger{}
	for _, x := range r.Run.Triggers {
		tr[x.Name] = x
	}
	p, c := tr["pricing-revisit"], tr["cart-abandonment"]
	if p.Sends != 5 || p.SuppressedTotal != 7 || p.Deferred != 1 || p.Holdout.Runs != 4 ||
		p.Sent.Converted != 2 || p.Holdout.Converted != 1 || p.Effect == nil ||
		p.Effect.Low != -0.380717 || p.Effect.High != 0.572077 || p.Funnel != (report.Funnel{Fired: 11, Emailed: 5, Converted: 2}) {
		t.Errorf("pricing-revisit: %+v", p)
	}
	if c.Sends != 6 || c.Sent.Runs != 4 || c.Sent.Converted != 2 || c.Suppressed["exited"] != 1 ||
		c.Suppressed["frequency_cap"] != 1 || c.Sent.TimeToConversion.Median != 52200 {
		t.Errorf("cart-abandonment: %+v", c)
	}
	if tot := r.Run.Totals; tot.Sends != 11 || tot.Users != 8 || tot.SuppressedTotal != 9 || tot.Converted != 4 || r.Run.Processing.Timers != 9 ||
		r.Run.Processing.Late != 1 || r.Run.Processing.Duplicates != 1 {
		t.Errorf("totals: %+v, processing %+v", tot, r.Run.Processing)
	}
	if d := r.Compare.Totals.Commands; d != (report.Overlap{Same: 11, OnlyB: 4}) {
		t.Errorf("compare overlap: %+v", d)
	}
}

// TestGoldenWorkers checks that the output does not depend on how users are
// shared out among workers, nor on how often state is flushed, nor on
// whether the stores are on disk.
func TestGoldenWorkers(t *testing.T) {
	base := t.TempDir()
	if _, err := Run(context.Background(), goldenConfig(t, base)); err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		name       string
		workers    int
		flushEvery int
		disk       bool
	}{
		{"one worker", 1, 0, false},
		{"five workers, flush every 3 events, on disk", 5, 3, true},
	} {
		t.Run(v.name, func(t *testing.T) {
			out := t.TempDir()
			cfg := goldenConfig(t, out)
			cfg.Workers, cfg.FlushEvery = v.workers, v.flushEvery
			if v.disk {
				cfg.InMemory, cfg.StateDir = false, t.TempDir()
			}
			if _, err := Run(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			for _, name := range append(goldenFiles, ReportHTMLFile) {
				want, _ := os.ReadFile(filepath.Join(base, name))
				got, err := os.ReadFile(filepath.Join(out, name))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s differs from the default run (%v):\n%s", name, err, lineDiff(want, got))
				}
			}
			if v.disk {
				if left, _ := os.ReadDir(cfg.StateDir); len(left) != 0 {
					t.Errorf("state directory not cleaned up: %d entries", len(left))
				}
			}
		})
	}
}

// lineDiff shows the first lines that differ.
func lineDiff(want, got []byte) string {
	w, g := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	var b bytes.Buffer
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 8; i++ {
		var wl, gl []byte
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if !bytes.Equal(wl, gl) {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + string(wl) + "\n  got:  " + string(gl) + "\n")
			shown++
		}
	}
	return b.String()
}

// TestGoldenAssignments checks the holdout and variant assignments the
// hand computation of TestGolden relies on.
func TestGoldenAssignments(t *testing.T) {
	variants := []policy.Variant{{Name: "A", Weight: 50}, {Name: "B", Weight: 50}}
	for user, want := range map[string]string{
		"ann": "A held", "ben": "B held", "cat": "A held", "dan": "A held",
		"eve": "B", "hal": "A", "ivy": "A", "jon": "A", "kim": "B", "lea": "B", "zed": "A",
	} {
		v, _ := policy.Assign(user, "pricing-revisit", 0, variants)
		if _, held := policy.Assign(user, "pricing-revisit", 0.5, variants); held {
			v += " held"
		}
		if v != want {
			t.Errorf("%s: %s, want %s", user, v, want)
		}
	}
}
