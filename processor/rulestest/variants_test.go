package rulestest_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/task"
	"github.com/microtrigger/microtrigger/processor/task/tasktest"
	"github.com/microtrigger/microtrigger/schema"
)

// TestVariantShares is scenario 17 at scale: 10,000 users revisit /pricing;
// the A/B shares and the holdout share land within two points of the pack's
// 45/45/10, holdout users get nothing (reason holdout), and every user gets
// the same assignment again on a replay that restarts from the store
// half-way.
func TestVariantShares(t *testing.T) {
	pack, err := rules.Load(os.DirFS("../../testdata/rules"), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const users = 10_000
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var inputs []task.Input
	add := func(m map[string]any) {
		raw, _ := json.Marshal(m)
		ev, err := schema.DecodeEvent(raw)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, task.Input{Event: ev, Raw: raw, Seq: int64(len(inputs))})
	}
	for i := 0; i < users; i++ {
		id := fmt.Sprintf("visitor-%05d", i)
		add(map[string]any{"type": "identify", "userId": id, "messageId": id + "-t", "timestamp": schema.FormatTime(t0.Add(-time.Minute)),
			"traits": map[string]any{"email": id + "@example.com", "email_opt_in": true}})
	}
	for i := 0; i < users; i++ {
		id := fmt.Sprintf("visitor-%05d", i)
		for k, d := range []time.Duration{0, 3 * time.Minute} {
			add(map[string]any{"type": "page", "userId": id, "messageId": fmt.Sprintf("%s-%d", id, k),
				"timestamp": schema.FormatTime(t0.Add(d)), "context": map[string]any{"page": map[string]any{"path": "/pricing"}}})
		}
	}
	run := func(restartAt int) (variants map[string]string, held map[string]bool) {
		fs := vfs.NewMem()
		tk := tasktest.New(t, tasktest.Config{Pack: pack, FS: fs})
		variants, held = map[string]string{}, map[string]bool{}
		flush := func() {
			out := tk.Flush()
			for _, c := range out.Commands {
				variants[c.UserID] = c.Variant
			}
			for _, s := range out.Suppressions {
				if s.Reason != schema.SuppressHoldout {
					t.Fatalf("unexpected suppression %+v", s)
				}
				held[s.UserID] = true
			}
		}
		for i, in := range inputs {
			if i == restartAt {
				flush()
				tk.Close()
				tk = tasktest.New(t, tasktest.Config{Pack: pack, FS: fs})
			}
			tk.Offer(in)
		}
		if err := tk.AdvanceWatermark(t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		flush()
		tk.Close()
		return variants, held
	}
	variants, held := run(-1)
	counts := map[string]int{}
	for _, v := range variants {
		counts[v]++
	}
	for _, c := range []struct {
		name  string
		n     int
		share float64
	}{{"A", counts["A"], 0.45}, {"B", counts["B"], 0.45}, {"holdout", len(held), 0.10}} {
		got := float64(c.n) / users
		t.Logf("%s: %d users (%.2f%%)", c.name, c.n, 100*got)
		if math.Abs(got-c.share) > 0.02 {
			t.Errorf("%s share %.3f, want %.2f ± 0.02", c.name, got, c.share)
		}
	}
	if len(variants)+len(held) != users {
		t.Errorf("%d sent + %d held out, want %d users", len(variants), len(held), users)
	}
	for u := range held {
		if _, sent := variants[u]; sent {
			t.Errorf("held-out user %s was sent", u)
		}
	}
	again, heldAgain := run(len(inputs) / 2)
	for u, v := range variants {
		if again[u] != v {
			t.Fatalf("user %s: variant %q, then %q after a restart", u, v, again[u])
		}
	}
	if len(heldAgain) != len(held) {
		t.Fatalf("holdout group changed size: %d, then %d", len(held), len(heldAgain))
	}
}
