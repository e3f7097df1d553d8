package state

import (
	"time"
)

// User is one user's state. Field names in the json tags are what CEL rules
// see (user.cart.value, user.pages["/pricing"].views, ...) and what the
// encoding stores.
type User struct {
	// Key is the user key (userId, else anonymousId). It is needed to
	// address send-commands; erasure removes the whole User.
	Key string `json:"key"`
	// Traits are the merged identify traits (email, timezone,
	// email_opt_in, lifetime_value, ...).
	Traits map[string]any `json:"traits,omitempty"`
	// Zone is the time zone from the latest event context, used when the
	// traits name none.
	Zone string `json:"zone,omitempty"`
	// Device is context.device.type of the latest event (by event time)
	// that named one: "mobile", "tablet", ... ("" until one does). Rules
	// read it as user.device.
	Device string `json:"device,omitempty"`

	FirstSeen time.Time `json:"first_seen,omitzero"`
	// LastEvent is the time of the latest event applied (any kind).
	LastEvent time.Time `json:"last_event,omitzero"`
	// LastSeen is the latest time of each event key ("Product Added",
	// "page", ...).
	LastSeen map[string]time.Time `json:"last_seen,omitempty"`
	// Counts is the number of events of each key, all time.
	Counts map[string]int64 `json:"counts,omitempty"`

	Pages        map[string]*Page   `json:"pages,omitempty"`
	Hovers       map[string]int64   `json:"hovers,omitempty"` // per element
	Videos       map[string]float64 `json:"videos,omitempty"` // furthest position per page path, seconds
	VideoSeconds float64            `json:"video_seconds,omitempty"`
	Cart         Cart               `json:"cart"`
	Session      Session            `json:"session"`

	// Score is the engagement score as of ScoreAt (it decays with the
	// configured half-life). The engine moves it forward to the time of
	// each evaluation, events and timers alike, before rules read it.
	Score   float64   `json:"score,omitempty"`
	ScoreAt time.Time `json:"score_at,omitzero"`

	// Aggs holds the entries of the rule pack's declared aggregates.
	Aggs map[string]*Agg `json:"aggs,omitempty"`
	// Triggers holds each trigger's state for this user.
	Triggers map[string]*Trigger `json:"triggers,omitempty"`

	// Unsubscribed and Bounced are set by the Unsubscribed and Email
	// Bounced events; either suppresses every later send.
	Unsubscribed time.Time `json:"unsubscribed_at,omitzero"`
	Bounced      time.Time `json:"bounced_at,omitzero"`

	// SeenIDs are hashes of the latest messageIds, for dedupe.
	SeenIDs []uint64 `json:"seen_ids,omitempty"`
	// Sends is the send log used by frequency caps, oldest first.
	Sends []Send `json:"sends,omitempty"`

	// aggsPruneAt caches, for the engine, a time before which no entry of
	// Aggs leaves its window, so that an event need not look at every
	// aggregate to find nothing to drop. Zero means unknown (a state just
	// decoded or built). It is derived data: never encoded, never read by
	// rules.
	aggsPruneAt time.Time
}

// Page is what is known of one page path.
type Page struct {
	Views    int64     `json:"views"`
	Revisits int64     `json:"revisits"` // views in a later session than the previous view
	First    time.Time `json:"first_seen,omitzero"`
	Last     time.Time `json:"last_seen,omitzero"`
	// LastSession is the start of the session of the latest view.
	LastSession time.Time `json:"last_session,omitzero"`
	MaxScroll   float64   `json:"max_scroll,omitempty"` // percent
	Dwell       float64   `json:"dwell,omitempty"`      // seconds, from heartbeats
}

// Cart is the current cart. Order Completed empties it.
type Cart struct {
	Items       []CartItem `json:"items,omitempty"`
	Value       float64    `json:"value"`
	FirstAdded  time.Time  `json:"first_added,omitzero"`
	LastChanged time.Time  `json:"last_changed,omitzero"`
}

// CartItem is one product line.
type CartItem struct {
	ProductID string    `json:"product_id"`
	Name      string    `json:"name,omitempty"`
	Category  string    `json:"category,omitempty"`
	Price     float64   `json:"price"`
	Quantity  float64   `json:"quantity"`
	Added     time.Time `json:"added,omitzero"`
}

// Session is the current session: events separated by less than the
// session gap (30 minutes) belong to one session.
type Session struct {
	Start  time.Time `json:"start,omitzero"`
	Last   time.Time `json:"last,omitzero"`
	Events int64     `json:"events"`
	// Scroll and Video are the furthest scroll percent and video position
	// per page path within this session.
	Scroll map[string]float64 `json:"scroll,omitempty"`
	Video  map[string]float64 `json:"video,omitempty"`
}

// Agg holds the entries of one declared windowed aggregate. Entries are in
// time order; those older than the window are dropped as time passes.
type Agg struct {
	Entries []AggEntry `json:"entries,omitempty"`
}

// AggEntry is one contribution: at time T, value V, for group key K ("" when
// the aggregate has no `by`).
type AggEntry struct {
	T time.Time `json:"t"`
	K string    `json:"k,omitempty"`
	V float64   `json:"v"`
}

// Trigger is one trigger's state for this user.
type Trigger struct {
	// Run is the active run, nil when none.
	Run *Run `json:"run,omitempty"`
	// Runs counts runs started; Sent counts emails sent, all runs.
	Runs int64 `json:"runs"`
	Sent int64 `json:"sent"`
	// LastEnd is when the latest run that sent (or was held out) ended;
	// cooldowns count from it.
	LastEnd time.Time `json:"last_end,omitzero"`
	// Entered is true once a run has sent (or held the user out): with
	// re-entry off, no later run starts.
	Entered bool `json:"entered,omitempty"`
	// CooldownNoted is when a firing during the current cooldown was last
	// recorded as suppressed; one record per cooldown is enough.
	CooldownNoted time.Time `json:"cooldown_noted,omitzero"`
}

// Phase of a run.
const (
	PhaseWait = "wait" // waiting to re-check the condition
	PhaseStep = "step" // waiting for step Step to come due
)

// Run is one pass of a user through a trigger.
type Run struct {
	Seq     int64     `json:"seq"` // Trigger.Runs at start: tells runs apart
	Started time.Time `json:"started"`
	Entry   Entry     `json:"entry"`
	Phase   string    `json:"phase"`
	// Step is the 0-based index of the step that comes next.
	Step int `json:"step"`
	// Due is when the pending timer fires: the end of the wait, the step's
	// due time, or the end of quiet hours for a deferred step.
	Due      time.Time `json:"due"`
	Deferred bool      `json:"deferred,omitempty"`
	Variant  string    `json:"variant,omitempty"`
	Sent     int       `json:"sent"`
	// Last is when the previous step resolved; step delays count from it.
	Last time.Time `json:"last"`
}

// Entry is the event that started a run, kept so that later steps, exit
// filters and merge data can refer to it as `entry`.
type Entry struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Time       time.Time      `json:"time"`
	Path       string         `json:"path,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Send is one entry of the send log.
type Send struct {
	At      time.Time `json:"at"`
	Trigger string    `json:"trigger"`
	Step    int       `json:"step"`
}

// New returns the empty state of a user.
func New(key string) *User {
	return &User{Key: key}
}

// AggsPruneAt returns the time recorded by SetAggsPruneAt: no aggregate
// entry leaves its window before it. ok is false when none is known; the
// engine then looks at every aggregate and records the time anew.
func (u *User) AggsPruneAt() (t time.Time, ok bool) {
	return u.aggsPruneAt, !u.aggsPruneAt.IsZero()
}

// SetAggsPruneAt records that no aggregate entry leaves its window before
// t; the zero time forgets it. Whoever adds an entry that leaves its window
// earlier must lower it (or forget it).
func (u *User) SetAggsPruneAt(t time.Time) { u.aggsPruneAt = t }

// NextDue returns the earliest pending timer of the user's runs.
func (u *User) NextDue() (time.Time, bool) {
	var min time.Time
	found := false
	for _, t := range u.Triggers {
		if t.Run != nil && !t.Run.Due.IsZero() && (!found || t.Run.Due.Before(min)) {
			min, found = t.Run.Due, true
		}
	}
	return min, found
}

// Email returns the email trait, or "".
func (u *User) Email() string {
	s, _ := u.Traits["email"].(string)
	return s
}

// TraitZone returns the timezone trait, else the zone of the latest event
// context, else "".
func (u *User) TraitZone() string {
	if s, ok := u.Traits["timezone"].(string); ok && s != "" {
		return s
	}
	return u.Zone
}
