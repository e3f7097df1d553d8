package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/schema"
)

// Reachable answers whether the user may be emailed at all: an address,
// consent, no unsubscribe, no bounce. It returns "" when they may.
func Reachable(u *state.User, c *Config) schema.SuppressReason {
	switch {
	case !u.Unsubscribed.IsZero():
		return schema.SuppressUnsubscribed
	case !u.Bounced.IsZero():
		return schema.SuppressBounced
	}
	if c.ConsentRequired {
		if ok, _ := u.Traits[c.ConsentTrait].(bool); !ok {
			return schema.SuppressNoConsent
		}
	}
	if u.Email() == "" {
		return schema.SuppressNoEmail
	}
	return ""
}

// Cooling reports whether a trigger with the given cooldown may not start a
// new run at now because its previous run ended less than cooldown ago.
func Cooling(t *state.Trigger, cooldown time.Duration, now time.Time) bool {
	return cooldown > 0 && t != nil && !t.LastEnd.IsZero() && now.Sub(t.LastEnd) < cooldown
}

// Rank orders candidates when caps bind: higher intent first, then higher
// priority, then name. Lower Rank values win.
type Rank struct {
	Intent   int // 0 high, 1 mid, 2 low
	Priority int
	Name     string
}

// IntentRank maps an intent to Rank.Intent.
func IntentRank(intent string) int {
	switch intent {
	case schema.IntentHigh:
		return 0
	case schema.IntentMid:
		return 1
	default:
		return 2
	}
}

// Before reports whether r outranks o.
func (r Rank) Before(o Rank) bool {
	if r.Intent != o.Intent {
		return r.Intent < o.Intent
	}
	if r.Priority != o.Priority {
		return r.Priority > o.Priority
	}
	return r.Name < o.Name
}

// Period identifies the calendar day and ISO week of a time in a zone.
type Period struct {
	Day  int64 // days since 1970-01-01 on the local calendar
	Week int64 // year*100 + ISO week
}

// PeriodOf returns t's local day and week.
func PeriodOf(t time.Time, loc *time.Location) Period {
	lt := t.In(loc)
	y, m, d := lt.Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
	wy, w := lt.ISOWeek()
	return Period{Day: day, Week: int64(wy)*100 + int64(w)}
}

// Names of the calendar caps, in suppressions.
const (
	CapPerDay  = "per_day"
	CapPerWeek = "per_week"
)

// Capacity counts what the caps leave for a send at t: sent counts the send
// log, reserved counts pending sends of higher rank that will land in the
// same day or week. It returns "" when the send fits, else the reason and
// the cap that binds (CapPerDay, CapPerWeek).
func Capacity(c *Config, sends []state.Send, reserved []time.Time, t time.Time, loc *time.Location) (schema.SuppressReason, string) {
	if c.PerDay <= 0 && c.PerWeek <= 0 {
		return "", ""
	}
	p := PeriodOf(t, loc)
	day, week := 0, 0
	count := func(at time.Time) {
		q := PeriodOf(at, loc)
		if q.Day == p.Day {
			day++
		}
		if q.Week == p.Week {
			week++
		}
	}
	for _, s := range sends {
		count(s.At)
	}
	for _, at := range reserved {
		count(at)
	}
	switch {
	case c.PerDay > 0 && day >= c.PerDay:
		return schema.SuppressFrequencyCap, CapPerDay
	case c.PerWeek > 0 && week >= c.PerWeek:
		return schema.SuppressFrequencyCap, CapPerWeek
	}
	return "", ""
}

// Full reports whether cap leaves no room for a send at t: sent are the
// times of the user's sends of the cap's category, reserved the expected
// times of pending sends of the category that outrank this one. A send
// counts when it is less than Per before t, a reserved one when it is
// less than Per away on either side (it would share a window with t).
func (c *Cap) Full(sent, reserved []time.Time, t time.Time) bool {
	n := 0
	for _, at := range sent {
		if !at.After(t) && t.Sub(at) < c.Per {
			n++
		}
	}
	for _, at := range reserved {
		if d := at.Sub(t); d < c.Per && -d < c.Per {
			n++
		}
	}
	return n >= c.Max
}

// Variant is one arm of an A/B test.
type Variant struct {
	Name   string
	Weight float64
}

// Assign puts a user in the holdout group or in one variant of a trigger.
// The assignment is a pure function of the user key and the trigger name,
// so it is the same in every driver, on every replay and after every
// restart. holdout is a share in [0,1).
func Assign(userKey, trigger string, holdout float64, variants []Variant) (variant string, heldOut bool) {
	if holdout > 0 && unit(userKey, trigger, "holdout") < holdout {
		return "", true
	}
	if len(variants) == 0 {
		return "", false
	}
	total := 0.0
	for _, v := range variants {
		total += v.Weight
	}
	x := unit(userKey, trigger, "variant") * total
	for _, v := range variants {
		if x < v.Weight {
			return v.Name, false
		}
		x -= v.Weight
	}
	return variants[len(variants)-1].Name, false
}

// unit hashes its inputs to a uniform number in [0,1).
func unit(parts ...string) float64 {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var sum [32]byte
	v := binary.BigEndian.Uint64(h.Sum(sum[:0])[:8])
	return float64(v>>11) / (1 << 53)
}
