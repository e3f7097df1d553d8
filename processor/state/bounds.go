package state

import (
	"sort"
	"time"
)

// Limits bound one user's state so that a noisy or hostile user cannot grow
// it without end. Past a limit the oldest (or least used) entries are
// evicted, and each eviction is counted.
type Limits struct {
	Pages     int // page paths kept (least recently viewed evicted)
	EventKeys int // event keys in last_seen and counts
	Elements  int // hover elements and video paths
	Session   int // per-session scroll and video paths
	CartItems int
	AggEntry  int // entries per declared aggregate
	SeenIDs   int // messageIds remembered for dedupe
	Sends     int // send-log entries (entries past the cap windows go first)
	Traits    int // trait keys
}

// DefaultLimits are the documented per-user bounds.
func DefaultLimits() Limits {
	return Limits{
		Pages: 200, EventKeys: 200, Elements: 100, Session: 50, CartItems: 100,
		AggEntry: 512, SeenIDs: 64, Sends: 64, Traits: 64,
	}
}

// Evictions counts entries dropped to stay within Limits, by kind. Kinds
// are metric labels.
type Evictions struct {
	Pages, EventKeys, Elements, Session, CartItems, AggEntries, SeenIDs, Sends, Traits int
}

// Add adds o to e.
func (e *Evictions) Add(o Evictions) {
	e.Pages += o.Pages
	e.EventKeys += o.EventKeys
	e.Elements += o.Elements
	e.Session += o.Session
	e.CartItems += o.CartItems
	e.AggEntries += o.AggEntries
	e.SeenIDs += o.SeenIDs
	e.Sends += o.Sends
	e.Traits += o.Traits
}

// Each calls fn for every non-zero count with its kind label.
func (e Evictions) Each(fn func(kind string, n int)) {
	for _, k := range []struct {
		kind string
		n    int
	}{
		{"pages", e.Pages}, {"event_keys", e.EventKeys}, {"elements", e.Elements},
		{"session", e.Session}, {"cart_items", e.CartItems}, {"agg_entries", e.AggEntries},
		{"seen_ids", e.SeenIDs}, {"sends", e.Sends}, {"traits", e.Traits},
	} {
		if k.n > 0 {
			fn(k.kind, k.n)
		}
	}
}

// Enforce trims u to the limits and counts what it dropped. It runs after
// every applied input, so at most a few entries go at a time; the choice of
// victims is deterministic (ties broken by key).
func (u *User) Enforce(l Limits, ev *Evictions) {
	if over := len(u.Pages) - l.Pages; over > 0 {
		ev.Pages += evictOldest(u.Pages, over, func(p *Page) time.Time { return p.Last })
	}
	if over := len(u.LastSeen) - l.EventKeys; over > 0 {
		victims := oldestKeys(u.LastSeen, over, func(t time.Time) time.Time { return t })
		for _, k := range victims {
			delete(u.LastSeen, k)
			delete(u.Counts, k)
		}
		ev.EventKeys += len(victims)
	}
	if over := len(u.Hovers) - l.Elements; over > 0 {
		ev.Elements += evictSmallest(u.Hovers, over)
	}
	if over := len(u.Videos) - l.Elements; over > 0 {
		ev.Elements += evictSmallest(u.Videos, over)
	}
	if over := len(u.Session.Scroll) - l.Session; over > 0 {
		ev.Session += evictSmallest(u.Session.Scroll, over)
	}
	if over := len(u.Session.Video) - l.Session; over > 0 {
		ev.Session += evictSmallest(u.Session.Video, over)
	}
	if over := len(u.Cart.Items) - l.CartItems; over > 0 {
		// Items are appended, so the oldest come first.
		u.Cart.Items = append(u.Cart.Items[:0], u.Cart.Items[over:]...)
		ev.CartItems += over
	}
	for _, a := range u.Aggs {
		if over := len(a.Entries) - l.AggEntry; over > 0 {
			a.Entries = append(a.Entries[:0], a.Entries[over:]...)
			ev.AggEntries += over
		}
	}
	if over := len(u.SeenIDs) - l.SeenIDs; over > 0 {
		u.SeenIDs = append(u.SeenIDs[:0], u.SeenIDs[over:]...)
		ev.SeenIDs += over
	}
	if over := len(u.Sends) - l.Sends; over > 0 {
		u.Sends = append(u.Sends[:0], u.Sends[over:]...)
		ev.Sends += over
	}
	if over := len(u.Traits) - l.Traits; over > 0 {
		// Traits carry no times: drop the alphabetically last, never the
		// ones policy reads.
		keys := make([]string, 0, len(u.Traits))
		for k := range u.Traits {
			switch k {
			case "email", "timezone", "email_opt_in":
				continue
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i := 0; i < over && i < len(keys); i++ {
			delete(u.Traits, keys[len(keys)-1-i])
			ev.Traits++
		}
	}
}

func oldestKeys[V any](m map[string]V, n int, at func(V) time.Time) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ti, tj := at(m[keys[i]]), at(m[keys[j]])
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return keys[i] < keys[j]
	})
	return keys[:n]
}

func evictOldest[V any](m map[string]V, n int, at func(V) time.Time) int {
	for _, k := range oldestKeys(m, n, at) {
		delete(m, k)
	}
	return n
}

func evictSmallest[V int64 | float64](m map[string]V, n int) int {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] < m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys[:n] {
		delete(m, k)
	}
	return n
}
