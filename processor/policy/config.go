package policy

import (
	"fmt"
	"time"
)

// Config is the pack's global policy (the `policy:` block of a rule pack).
// The zero value sends everything at once; DefaultConfig is what a pack
// without a policy block gets.
type Config struct {
	// Grace is how long events wait to be put in event-time order.
	Grace time.Duration
	// MaxFutureSkew is how much later than its arrival (receivedAt, else
	// the Kafka record's timestamp, else sentAt) an event may be stamped;
	// drivers dead-letter what exceeds it as future_timestamp, so that
	// one device's wrong clock cannot move its partition's event time.
	// 0: no bound.
	MaxFutureSkew time.Duration
	// Zone is the time zone of users whose traits and events name none.
	Zone string
	// ConsentRequired suppresses users whose ConsentTrait is not true.
	ConsentRequired bool
	ConsentTrait    string
	// PerDay and PerWeek cap triggered emails per user, counted in the
	// user's time zone (calendar day; ISO week, Monday first). 0: no cap.
	PerDay, PerWeek int
	// Caps cap the emails of one category of triggers per user over a
	// rolling window, beside PerDay and PerWeek.
	Caps []Cap
	// Quiet, when set, defers sends that fall inside it to its end.
	Quiet *QuietHours
	// SessionGap ends a session after this much inactivity.
	SessionGap time.Duration
	// ScoreWeights add to the engagement score per event key; the score
	// halves every ScoreHalfLife (0: never decays).
	ScoreWeights  map[string]float64
	ScoreHalfLife time.Duration
}

// DefaultConfig is the policy of DESIGN.md: consent required through the
// email_opt_in trait, 2 emails a day and 3 a week, quiet from 21:00 to 08:00.
func DefaultConfig() Config {
	return Config{
		Grace:           5 * time.Second,
		MaxFutureSkew:   10 * time.Minute,
		Zone:            "UTC",
		ConsentRequired: true,
		ConsentTrait:    "email_opt_in",
		PerDay:          2,
		PerWeek:         3,
		Quiet:           &QuietHours{Start: 21 * 60, End: 8 * 60},
		SessionGap:      30 * time.Minute,
		ScoreHalfLife:   7 * 24 * time.Hour,
	}
}

// Cap is a cap per category of triggers: at most Max emails of the
// triggers whose category is Category in any Per (a rolling window).
type Cap struct {
	Category string
	Max      int
	Per      time.Duration
	// Name says which cap bound in suppressions: "promo/48h".
	Name string
}

// MaxCapWindow is the longest Per a cap may have: the send log keeps
// 8 days of sends.
const MaxCapWindow = 7 * 24 * time.Hour

// QuietHours is a daily window in the user's local time, in minutes after
// midnight. Start > End wraps midnight (21:00–08:00).
type QuietHours struct {
	Start, End int
}

// ParseClock parses "HH:MM" into minutes after midnight.
func ParseClock(s string) (int, error) {
	var h, m int
	if n, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || n != 2 || len(s) != 5 || h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, fmt.Errorf("invalid time of day %q: want HH:MM", s)
	}
	return h*60 + m, nil
}

// Contains reports whether local time-of-day minute m is quiet.
func (q *QuietHours) Contains(m int) bool {
	if q.Start == q.End {
		return false
	}
	if q.Start < q.End {
		return m >= q.Start && m < q.End
	}
	return m >= q.Start || m < q.End
}

// Until returns when the quiet period containing t ends, and whether t is
// quiet at all. The end is the first instant after t whose local time is
// outside the window, so it is right across daylight-saving changes, also
// for a window that ends in an hour a change skips or repeats.
func (q *QuietHours) Until(t time.Time, loc *time.Location) (time.Time, bool) {
	lt := t.In(loc)
	m := lt.Hour()*60 + lt.Minute()
	if !q.Contains(m) {
		return time.Time{}, false
	}
	// Without a clock change the wall clock reaches the end this much later.
	wall := time.Duration((q.End-m+24*60)%(24*60))*time.Minute -
		time.Duration(lt.Second())*time.Second - time.Duration(lt.Nanosecond())
	end := t.Add(wall)
	// A change by then moves the wall clock: the window ends there if
	// the clock jumps out of it, else it goes on from the new local time.
	if _, change := lt.ZoneBounds(); !change.IsZero() && !change.After(end) {
		if next, quiet := q.Until(change, loc); quiet {
			return next, true
		}
		return change.UTC(), true
	}
	return end.UTC(), true
}
