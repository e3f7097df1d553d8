package policy_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/processor/policy"
)

// TestSendWindowNextOpens checks on random windows, zones and times that
// Next defers to an instant inside the window, later than the time, with
// no instant inside the window in between (sampled every 7 minutes), across
// the clock changes of the zones.
func TestSendWindowNextOpens(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var zones []*time.Location
	for _, name := range []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		zones = append(zones, loc)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 3000; i++ {
		w := policy.SendWindow{Start: r.IntN(24*4) * 15, End: r.IntN(24*4) * 15}
		for d := range w.Days {
			w.Days[d] = r.IntN(2) == 0
		}
		w.Days[r.IntN(7)] = true
		loc := zones[r.IntN(len(zones))]
		at := t0.Add(time.Duration(r.Int64N(int64(365 * 24 * time.Hour)))).Truncate(time.Minute)
		opens, outside := w.Next(at, loc)
		if !outside {
			continue
		}
		if !opens.After(at) {
			t.Fatalf("%+v in %s at %s: opens %s, not later", w, loc, at, opens)
		}
		if _, out := w.Next(opens, loc); out {
			t.Fatalf("%+v in %s at %s: opens %s, which is outside", w, loc, at, opens)
		}
		for x := at; x.Before(opens); x = x.Add(7 * time.Minute) {
			if _, out := w.Next(x, loc); !out {
				t.Fatalf("%+v in %s at %s: opens %s, but %s is inside", w, loc, at, opens, x)
			}
		}
	}
}

func TestSendWindowQuiet(t *testing.T) {
	q := &policy.QuietHours{Start: 21 * 60, End: 8 * 60}
	for _, c := range []struct {
		start, end int
		quiet      bool
	}{
		{22 * 60, 23 * 60, true},
		{21 * 60, 8 * 60, true},
		{20 * 60, 22 * 60, false},
		{7 * 60, 9 * 60, false},
		{0, 0, false}, // whole days
	} {
		w := policy.SendWindow{Start: c.start, End: c.end}
		if got := w.Quiet(q); got != c.quiet {
			t.Errorf("window %d-%d: quiet %v, want %v", c.start, c.end, got, c.quiet)
		}
	}
	if (&policy.SendWindow{Start: 60, End: 120}).Quiet(nil) {
		t.Error("no quiet hours cover a window")
	}
}
