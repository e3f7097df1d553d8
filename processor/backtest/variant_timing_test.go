package backtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/processor/backtest/report"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/schema"
)

// TestVariantTiming replays 200 users who save a product to their
// wishlist at the same instant through the example pack, whose
// wishlist-reminder is an A/B test of timing (one-hour: wait 1h, follow-up
// a day later, emails worth sending for 2h; four-hours: 4h, two days, 6h).
// Each arm's commands carry its own timing, and the report says which arm
// timed what, so the arms' figures compare two timings.
func TestVariantTiming(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var in bytes.Buffer
	for i := 0; i < 200; i++ {
		id := fmt.Sprintf("w%03d", i)
		for _, m := range []map[string]any{
			{"type": "identify", "userId": id, "messageId": id + "-t", "timestamp": schema.FormatTime(t0.Add(-time.Minute)),
				"traits": map[string]any{"email": id + "@example.com", "email_opt_in": true, "timezone": "UTC"}},
			{"type": "track", "event": "Product Added to Wishlist", "userId": id, "messageId": id + "-w", "timestamp": schema.FormatTime(t0),
				"properties": map[string]any{"product_id": "p1", "name": "Desk Lamp"}},
		} {
			b, _ := json.Marshal(m)
			in.Write(append(b, '\n'))
		}
	}
	input := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(input, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	pack, err := rules.Load(os.DirFS("../../testdata/rules"), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	res, err := Run(context.Background(), Config{
		Pack: pack, Rules: "testdata/rules", File: input, To: t0.Add(4 * 24 * time.Hour), OutDir: out, InMemory: true,
	})
	if err != nil {
		t.Fatal(err)
	}

	type timing struct{ first, second, expiry time.Duration }
	want := map[string]timing{
		"one-hour":   {time.Hour, time.Hour + 24*time.Hour, 2 * time.Hour},
		"four-hours": {4 * time.Hour, 4*time.Hour + 48*time.Hour, 6 * time.Hour},
	}
	f, err := os.Open(filepath.Join(out, CommandsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sends := map[string][2]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c schema.SendCommand
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		if c.Trigger != "wishlist-reminder" {
			t.Fatalf("unexpected command %+v", c)
		}
		w, ok := want[c.Variant]
		if !ok {
			t.Fatalf("command of no arm: %+v", c)
		}
		at := w.first
		if c.Step == 2 {
			at = w.second
		}
		if got := c.SendAt.Sub(t0); got != at {
			t.Errorf("%s step %d (%s): sent %s after the save, want %s", c.UserID, c.Step, c.Variant, got, at)
		}
		if got := c.ExpiresAt.Sub(c.SendAt); got != w.expiry {
			t.Errorf("%s step %d (%s): expires %s after send_at, want %s", c.UserID, c.Step, c.Variant, got, w.expiry)
		}
		n := sends[c.Variant]
		n[c.Step-1]++
		sends[c.Variant] = n
	}
	for arm := range want {
		if n := sends[arm]; n[0] < 50 || n[0] != n[1] {
			t.Errorf("arm %s: %v sends by step, want the same number (at least 50) of each", arm, n)
		}
	}

	var tr *report.Trigger
	for i := range res.Report.Run.Triggers {
		if res.Report.Run.Triggers[i].Name == "wishlist-reminder" {
			tr = &res.Report.Run.Triggers[i]
		}
	}
	if tr == nil || len(tr.Variants) != 2 {
		t.Fatalf("report: wishlist-reminder %+v", tr)
	}
	for _, v := range tr.Variants {
		w := want[v.Name]
		if v.Timing.Wait != rules.FormatDuration(w.first) || v.Timing.ExpireAfter != rules.FormatDuration(w.expiry) {
			t.Errorf("report: arm %s timing %+v", v.Name, v.Timing)
		}
		if v.Sends != int64(sends[v.Name][0]+sends[v.Name][1]) {
			t.Errorf("report: arm %s %d sends, commands %v", v.Name, v.Sends, sends[v.Name])
		}
	}
	var summary bytes.Buffer
	if err := report.WriteSummary(&summary, res.Report); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"  variant one-hour  ", "  variant four-hours (wait 4h, delays 0s 2d, expire_after 6h)  "} {
		if !strings.Contains(summary.String(), line) {
			t.Errorf("summary lacks %q:\n%s", line, summary.String())
		}
	}
}
