package backtest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/microtrigger/microtrigger/processor/backtest"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/schema"
)

// TestFutureTimestampMovesNoClock replays a file in which one device
// stamped an event in 2099 although it was received in 2026. Accepted, it
// would move the replay clock to 2099 and fire every pending timer (here
// a cart's reminder); it is refused as future_timestamp instead, as the
// processor refuses it, and the cart waits.
func TestFutureTimestampMovesNoClock(t *testing.T) {
	lines := strings.Join([]string{
		`{"messageId":"i1","type":"identify","userId":"u1","timestamp":"2026-03-02T08:59:00Z","traits":{"email":"u1@example.com","email_opt_in":true}}`,
		`{"messageId":"c1","type":"track","event":"Product Added","userId":"u1","timestamp":"2026-03-02T09:00:00Z","properties":{"product_id":"p1","price":45}}`,
		`{"messageId":"f1","type":"page","userId":"u2","timestamp":"2099-03-02T09:00:00Z","receivedAt":"2026-03-02T09:00:01Z","context":{"page":{"path":"/"}}}`,
	}, "\n") + "\n"
	in := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(in, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		skew     string
		refused  int64
		commands int
	}{
		{skew: "10m", refused: 1, commands: 0},
		{skew: "0s", refused: 0, commands: 3}, // unchecked: 2099 fires the whole sequence
	} {
		t.Run("max_future_skew="+tc.skew, func(t *testing.T) {
			pack, err := rules.Load(os.DirFS("../../testdata/rules"), rules.Options{})
			if err != nil {
				t.Fatal(err)
			}
			pack.Policy.MaxFutureSkew, _ = rules.ParseDuration(tc.skew)
			out := t.TempDir()
			res, err := backtest.Run(context.Background(), backtest.Config{Pack: pack, File: in, OutDir: out, InMemory: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Report.Input.RefusedByReason[string(schema.ReasonFutureTime)]; got != tc.refused {
				t.Errorf("%d refused as future_timestamp, want %d", got, tc.refused)
			}
			cmds, err := os.ReadFile(filepath.Join(out, backtest.CommandsFile))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(string(cmds), "\n"); got != tc.commands {
				t.Errorf("%d commands, want %d:\n%s", got, tc.commands, cmds)
			}
		})
	}
}
