package schema

import (
	"time"
)

// Event types of the Segment Spec, plus delete for erasure requests.
const (
	TypeTrack    = "track"
	TypePage     = "page"
	TypeScreen   = "screen"
	TypeIdentify = "identify"
	TypeDelete   = "delete"
)

// Event is one tracker call: the Segment Spec envelope.
//
// Fields not listed here (integrations, context.library and so on) are
// accepted and ignored.
type Event struct {
	MessageID   string    `json:"messageId"`
	Type        string    `json:"type"`
	Event       string    `json:"event,omitempty"` // track name
	Name        string    `json:"name,omitempty"`  // page or screen name
	UserID      string    `json:"userId,omitempty"`
	AnonymousID string    `json:"anonymousId,omitempty"`
	Timestamp   time.Time `json:"timestamp"` // or originalTimestamp when timestamp is absent
	// SentAt and ReceivedAt are Segment's device send time and server
	// receive time, zero when absent; they bound Timestamp (CheckArrival).
	// They are read, never written: segmentio/encoding has no omitzero,
	// and a zero time would not decode again.
	SentAt     time.Time      `json:"-"`
	ReceivedAt time.Time      `json:"-"`
	Properties map[string]any `json:"properties,omitempty"`
	Traits     map[string]any `json:"traits,omitempty"`
	Context    Context        `json:"context,omitzero"`
}

// Context is the subset of Segment's context object microtrigger reads.
type Context struct {
	Page      PageContext `json:"page,omitzero"`
	UserAgent string      `json:"userAgent,omitempty"`
	Timezone  string      `json:"timezone,omitempty"`
	Locale    string      `json:"locale,omitempty"`
	Device    Device      `json:"device,omitzero"`
	Campaign  Campaign    `json:"campaign,omitzero"`
}

// PageContext is context.page.
type PageContext struct {
	Path     string `json:"path,omitempty"`
	URL      string `json:"url,omitempty"`
	Title    string `json:"title,omitempty"`
	Referrer string `json:"referrer,omitempty"`
}

// Device is context.device.
type Device struct {
	Type string `json:"type,omitempty"`
}

// Campaign is context.campaign: the UTM parameters of the link that
// brought the user (utm_source as source, and so on).
type Campaign struct {
	Name    string `json:"name,omitempty"`
	Source  string `json:"source,omitempty"`
	Medium  string `json:"medium,omitempty"`
	Term    string `json:"term,omitempty"`
	Content string `json:"content,omitempty"`
}

// UserKey is the key that partitions the events topic and identifies the
// user's state: userId, else anonymousId.
func (e *Event) UserKey() string {
	if e.UserID != "" {
		return e.UserID
	}
	return e.AnonymousID
}

// Key is the name rules wake on: the track event's name, or the call type
// ("page", "screen", "identify", "delete") for the other calls.
func (e *Event) Key() string {
	if e.Type == TypeTrack {
		return e.Event
	}
	return e.Type
}

// Path is the page path the event happened on: context.page.path, or the
// path property of a page call.
func (e *Event) Path() string {
	if e.Context.Page.Path != "" {
		return e.Context.Page.Path
	}
	if p, ok := e.Properties["path"].(string); ok {
		return p
	}
	return ""
}

// Number returns a numeric property, and whether it was present.
func (e *Event) Number(name string) (float64, bool) {
	f, ok := e.Properties[name].(float64)
	return f, ok
}

// String returns a string property ("" when absent).
func (e *Event) String(name string) string {
	s, _ := e.Properties[name].(string)
	return s
}
