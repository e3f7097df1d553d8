package engine

import (
	"math"
	"sort"
	"time"

	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/schema"
)

// Reconcile drops the state of triggers and aggregates the pack no longer
// has, so that a pack change cannot leave timers nobody fires. Drivers call
// it on every user state read from storage: the pack may have changed since
// it was written.
func (e *Engine) Reconcile(u *state.User) {
	for name := range u.Triggers {
		if e.pack.Trigger(name) == nil {
			delete(u.Triggers, name)
		}
	}
	// While at it, note when the first aggregate entry leaves its window,
	// so that the next input need not look (pruneAggregates).
	next := never()
	for name, a := range u.Aggs {
		spec := e.pack.Aggregate(name)
		if spec == nil {
			delete(u.Aggs, name)
			continue
		}
		if len(a.Entries) == 0 {
			next = time.Time{} // pruneAggregates drops it
			continue
		}
		if at := a.Entries[0].T.Add(spec.Window); !next.IsZero() && at.Before(next) {
			next = at
		}
	}
	u.SetAggsPruneAt(next)
}

// pruneAggregates drops aggregate entries that fell out of their window,
// and empty aggregates. The user state caches the earliest time an entry
// leaves its window (state.User.AggsPruneAt), so most events look at no
// aggregate at all; every aggregate is looked at once that time has come,
// or when it is not known (a state just decoded).
func (s *step) pruneAggregates() {
	if at, ok := s.u.AggsPruneAt(); ok && s.now.Before(at) {
		return
	}
	var next time.Time
	for name, a := range s.u.Aggs {
		spec := s.e.pack.Aggregate(name)
		if spec == nil {
			continue // not reconciled yet: Reconcile drops it
		}
		cut := s.now.Add(-spec.Window)
		i := 0
		for i < len(a.Entries) && !a.Entries[i].T.After(cut) {
			i++
		}
		if i > 0 {
			a.Entries = append(a.Entries[:0], a.Entries[i:]...)
		}
		if len(a.Entries) == 0 {
			delete(s.u.Aggs, name)
			continue
		}
		// The first entry leaves the window when now - window reaches it.
		if at := a.Entries[0].T.Add(spec.Window); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if next.IsZero() {
		// No entry at all: nothing to drop until one is added.
		next = never()
	}
	s.u.SetAggsPruneAt(next)
}

// never is later than any event or timer.
func never() time.Time { return time.Unix(1<<62, 0) }

// notePrune lowers the cached prune time for an entry of spec added at t.
func (s *step) notePrune(spec *rules.Aggregate, t time.Time) {
	if at, ok := s.u.AggsPruneAt(); ok {
		if exp := t.Add(spec.Window); exp.Before(at) {
			s.u.SetAggsPruneAt(exp)
		}
	}
}

// apply updates the built-in state every rule can read.
func (s *step) apply(ev *schema.Event) {
	u, t, key := s.u, ev.Timestamp, ev.Key()
	if u.FirstSeen.IsZero() || t.Before(u.FirstSeen) {
		u.FirstSeen = t
	}
	latest := !t.Before(u.LastEvent)
	if t.After(u.LastEvent) {
		u.LastEvent = t
	}
	if d := ev.Context.Device.Type; d != "" && latest {
		u.Device = d
	}
	s.session(t)
	if u.LastSeen == nil {
		u.LastSeen = map[string]time.Time{}
		u.Counts = map[string]int64{}
	}
	if last, ok := u.LastSeen[key]; !ok || t.After(last) {
		u.LastSeen[key] = t
	}
	u.Counts[key]++
	if z := ev.Context.Timezone; z != "" && z != u.Zone && schema.CheckTimezone(z) == nil {
		u.Zone = z
	}
	s.score(key, t)

	switch ev.Type {
	case schema.TypeIdentify:
		if len(ev.Traits) > 0 && u.Traits == nil {
			u.Traits = make(map[string]any, len(ev.Traits))
		}
		for k, v := range ev.Traits {
			u.Traits[k] = v
		}
	case schema.TypePage, schema.TypeScreen:
		s.pageView(ev.Path(), t)
	case schema.TypeTrack:
		s.track(ev, t)
	}
}

func (s *step) session(t time.Time) {
	ss := &s.u.Session
	gap := s.e.policy.SessionGap
	if gap <= 0 {
		gap = 30 * time.Minute
	}
	if ss.Start.IsZero() || t.Sub(ss.Last) > gap {
		*ss = state.Session{Start: t, Last: t}
	}
	if t.After(ss.Last) {
		ss.Last = t
	}
	ss.Events++
}

// score adds the event's weight to the engagement score. The stored score
// is the score as of ScoreAt: the sum of every weight, each halved every
// half-life since its event.
func (s *step) score(key string, t time.Time) {
	w := s.e.policy.ScoreWeights[key]
	u := s.u
	if t.Before(u.ScoreAt) {
		// A late event: its weight has decayed since t, as the others have.
		u.Score += w * s.decay(u.ScoreAt.Sub(t))
		return
	}
	s.scoreAt(t)
	u.Score += w
}

// scoreAt decays the score to t, so that rules evaluated at t read
// user.score as of t and not as of the last event: a timer days after the
// last event sees the score that much lower. Earlier times leave it as is.
func (s *step) scoreAt(t time.Time) {
	u := s.u
	if !t.After(u.ScoreAt) {
		return
	}
	if !u.ScoreAt.IsZero() && u.Score != 0 {
		u.Score *= s.decay(t.Sub(u.ScoreAt))
	}
	u.ScoreAt = t
}

// decay is the factor a weight keeps after d.
func (s *step) decay(d time.Duration) float64 {
	hl := s.e.policy.ScoreHalfLife
	if hl <= 0 || d <= 0 {
		return 1
	}
	return math.Exp2(-float64(d) / float64(hl))
}

func (s *step) page(path string) *state.Page {
	if path == "" {
		return nil
	}
	if s.u.Pages == nil {
		s.u.Pages = map[string]*state.Page{}
	}
	p := s.u.Pages[path]
	if p == nil {
		p = &state.Page{}
		s.u.Pages[path] = p
	}
	return p
}

func (s *step) pageView(path string, t time.Time) {
	p := s.page(path)
	if p == nil {
		return
	}
	if p.Views > 0 && !p.LastSession.Equal(s.u.Session.Start) {
		p.Revisits++
	}
	p.Views++
	if p.First.IsZero() || t.Before(p.First) {
		p.First = t
	}
	if t.After(p.Last) {
		p.Last = t
	}
	p.LastSession = s.u.Session.Start
}

func (s *step) track(ev *schema.Event, t time.Time) {
	u := s.u
	switch ev.Event {
	case "Page Scrolled":
		pct, _ := ev.Number("percent")
		if p := s.page(ev.Path()); p != nil {
			p.MaxScroll = math.Max(p.MaxScroll, pct)
			if u.Session.Scroll == nil {
				u.Session.Scroll = map[string]float64{}
			}
			u.Session.Scroll[ev.Path()] = math.Max(u.Session.Scroll[ev.Path()], pct)
		}
	case "Page Heartbeat":
		sec, _ := ev.Number("seconds")
		if p := s.page(ev.Path()); p != nil {
			p.Dwell += sec
		}
	case "Element Hovered":
		if el := ev.String("element"); el != "" {
			if u.Hovers == nil {
				u.Hovers = map[string]int64{}
			}
			u.Hovers[el]++
		}
	case "Video Content Playing":
		pos, _ := ev.Number("position")
		path := ev.Path()
		if u.Videos == nil {
			u.Videos = map[string]float64{}
		}
		if prev := u.Videos[path]; pos > prev {
			u.VideoSeconds += pos - prev
			u.Videos[path] = pos
		}
		if u.Session.Video == nil {
			u.Session.Video = map[string]float64{}
		}
		u.Session.Video[path] = math.Max(u.Session.Video[path], pos)
	case "Product Added":
		qty, ok := ev.Number("quantity")
		if !ok || qty <= 0 {
			qty = 1
		}
		price, _ := ev.Number("price")
		c := &u.Cart
		if len(c.Items) == 0 {
			c.FirstAdded = t
		}
		c.Items = append(c.Items, state.CartItem{
			ProductID: ev.String("product_id"), Name: ev.String("name"), Category: ev.String("category"),
			Price: price, Quantity: qty, Added: t,
		})
		c.Value = cartValue(c.Items)
		c.LastChanged = t
	case "Product Removed":
		c := &u.Cart
		id := ev.String("product_id")
		for i := len(c.Items) - 1; i >= 0; i-- {
			if c.Items[i].ProductID == id {
				c.Items = append(c.Items[:i], c.Items[i+1:]...)
				break
			}
		}
		c.Value = cartValue(c.Items)
		c.LastChanged = t
		if len(c.Items) == 0 {
			c.FirstAdded = time.Time{}
		}
	case "Order Completed":
		u.Cart = state.Cart{LastChanged: t}
	case "Unsubscribed":
		if u.Unsubscribed.IsZero() {
			u.Unsubscribed = t
		}
	case "Email Bounced":
		if u.Bounced.IsZero() {
			u.Bounced = t
		}
	}
}

func cartValue(items []state.CartItem) float64 {
	v := 0.0
	for _, it := range items {
		v += it.Price * it.Quantity
	}
	// Keep cents exact-ish: sums of prices should not print as 119.99999.
	return math.Round(v*100) / 100
}

// feedAggregates adds the event to every aggregate of aggs it passes.
func (s *step) feedAggregates(aggs []*rules.Aggregate, vars *rules.Vars) {
	for _, a := range aggs {
		if a.When != nil {
			s.res.Evaluated++
			ok, err := a.When.Bool(vars)
			s.fail(err)
			if !ok {
				continue
			}
		}
		v := 1.0
		if a.Value != nil {
			x, err := a.Value.Number(vars)
			if err != nil {
				s.fail(err)
				continue
			}
			v = x
		}
		k := ""
		if a.By != nil {
			x, err := a.By.String(vars)
			if err != nil {
				s.fail(err)
				continue
			}
			k = x
		}
		if s.u.Aggs == nil {
			s.u.Aggs = map[string]*state.Agg{}
		}
		st := s.u.Aggs[a.Name]
		if st == nil {
			st = &state.Agg{}
			s.u.Aggs[a.Name] = st
		}
		e := state.AggEntry{T: s.now, K: k, V: v}
		// Entries stay in time order; a late event is inserted in place.
		i := sort.Search(len(st.Entries), func(i int) bool { return st.Entries[i].T.After(e.T) })
		st.Entries = append(st.Entries, state.AggEntry{})
		copy(st.Entries[i+1:], st.Entries[i:])
		st.Entries[i] = e
		s.notePrune(a, e.T)
	}
}

func entryOf(ev *rules.Event) state.Entry {
	return state.Entry{ID: ev.ID, Name: ev.Name, Time: ev.Time, Path: ev.Path, Properties: ev.Properties}
}
