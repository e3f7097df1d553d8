package policy

import (
	"fmt"
	"strings"
	"time"
)

// SendWindow is when a trigger or step may send, in the user's local
// time: from Start to End (minutes after midnight; Start > End wraps
// midnight) on the days of Days, a window belonging to the day it opens
// on. A send outside it is deferred to its next opening, never dropped.
type SendWindow struct {
	Start, End int
	// Days holds the days the window opens on, by time.Weekday.
	Days [7]bool
}

// dayNames are the names of ParseDay, by time.Weekday.
var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseDay parses a day name (mon, tue, ..., sun; Monday, ... also do).
func ParseDay(s string) (time.Weekday, error) {
	l := strings.ToLower(s)
	for i, n := range dayNames {
		full := strings.ToLower(time.Weekday(i).String())
		if l == n || l == full {
			return time.Weekday(i), nil
		}
	}
	return 0, fmt.Errorf("invalid day %q: want mon, tue, wed, thu, fri, sat or sun", s)
}

// open reports whether the window opens on local date (y, m, d) and, if
// it does, when it opens and closes there.
func (w *SendWindow) open(y int, m time.Month, d int, loc *time.Location) (from, to time.Time, ok bool) {
	day := time.Date(y, m, d, 12, 0, 0, 0, loc)
	if !w.Days[day.Weekday()] {
		return time.Time{}, time.Time{}, false
	}
	from = wallTime(y, m, d, w.Start, loc)
	ed := d
	if w.End <= w.Start {
		ed++
	}
	to = wallTime(y, m, ed, w.End, loc)
	return from, to, true
}

// wallTime is the first instant of local date (y, m, d) whose wall clock
// reads minute min: a time a clock change skips is placed after the
// change (time.Date's normalisation), one it repeats at its first
// occurrence, before the change (time.Date may give either).
func wallTime(y int, m time.Month, d, min int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, min/60, min%60, 0, 0, loc)
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return t
	}
	_, now := t.Zone()
	_, before := start.Add(-time.Nanosecond).Zone()
	if before <= now {
		return t
	}
	// The clock went back at start: the same wall time came
	// before - now seconds earlier, if that was still before start.
	if earlier := t.Add(-time.Duration(before-now) * time.Second); earlier.Before(start) {
		return earlier
	}
	return t
}

// Next returns the next opening of the window after t, and true, when t
// is outside it; when t is inside, it returns false. A window that opens
// on no day never opens: Next returns false (the loader refuses such
// windows).
func (w *SendWindow) Next(t time.Time, loc *time.Location) (time.Time, bool) {
	lt := t.In(loc)
	y, m, d := lt.Date()
	var next time.Time
	// The window of the day before may still be open (it wraps
	// midnight); a week and a day ahead holds every day's opening.
	for i := -1; i <= 8; i++ {
		from, to, ok := w.open(y, m, d+i, loc)
		if !ok || !to.After(from) {
			continue
		}
		if !t.Before(from) && t.Before(to) {
			return time.Time{}, false
		}
		if from.After(t) && (next.IsZero() || from.Before(next)) {
			next = from
		}
	}
	if next.IsZero() {
		return time.Time{}, false
	}
	return next.UTC(), true
}

// Quiet reports whether every minute of the window is inside q: a send
// window that quiet hours cover whole never lets an email go.
func (w *SendWindow) Quiet(q *QuietHours) bool {
	if q == nil {
		return false
	}
	n := (w.End - w.Start + 24*60) % (24 * 60)
	if n == 0 {
		n = 24 * 60
	}
	for i := 0; i < n; i++ {
		if !q.Contains((w.Start + i) % (24 * 60)) {
			return false
		}
	}
	return true
}
