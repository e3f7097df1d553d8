package schema

import (
	"time"

	"github.com/segmentio/encoding/json"
)

// SuppressReason says why a trigger firing sent nothing (or, for
// quiet_hours, why it was deferred).
type SuppressReason string

// Suppression reasons. The set is closed: metrics and reports key on it.
const (
	SuppressNoConsent       SuppressReason = "no_consent"
	SuppressUnsubscribed    SuppressReason = "unsubscribed"
	SuppressBounced         SuppressReason = "bounced"
	SuppressFrequencyCap    SuppressReason = "frequency_cap"
	SuppressCooldown        SuppressReason = "cooldown"
	SuppressInOtherSequence SuppressReason = "in_other_sequence"
	SuppressHoldout         SuppressReason = "holdout"
	SuppressErased          SuppressReason = "erased"
	SuppressExited          SuppressReason = "exited"
	SuppressNoEmail         SuppressReason = "no_email"
	// SuppressQuietHours records a deferral, not a drop: Until says when
	// the email will be sent.
	SuppressQuietHours SuppressReason = "quiet_hours"
	// SuppressSendWindow records a deferral too: the send fell outside
	// its trigger's or step's send_window, and Until is the window's next
	// opening, when the email will be sent.
	SuppressSendWindow SuppressReason = "send_window"
)

// Deferral reports whether r records a deferral (the email goes at
// Until), not a firing that sent nothing.
func (r SuppressReason) Deferral() bool {
	return r == SuppressQuietHours || r == SuppressSendWindow
}

// SuppressReasons lists every reason, in a stable order.
func SuppressReasons() []SuppressReason {
	return []SuppressReason{
		SuppressNoConsent, SuppressUnsubscribed, SuppressBounced, SuppressFrequencyCap,
		SuppressCooldown, SuppressInOtherSequence, SuppressHoldout, SuppressErased,
		SuppressExited, SuppressNoEmail, SuppressQuietHours, SuppressSendWindow,
	}
}

// Suppression records a firing that sent nothing, or a deferral.
type Suppression struct {
	UserID   string         `json:"user_id"`
	Trigger  string         `json:"trigger"`
	Step     int            `json:"step"`
	Template string         `json:"template"`
	Variant  string         `json:"variant,omitempty"`
	Reason   SuppressReason `json:"reason"`
	At       time.Time      `json:"at"`
	Until    time.Time      `json:"until,omitzero"` // quiet_hours, send_window: the new send time
	// Cap is which cap bound, for frequency_cap: per_day, per_week, or
	// a category cap as category/window ("promo/48h").
	Cap string `json:"cap,omitempty"`
}

type suppressionJSON struct {
	UserID   string         `json:"user_id"`
	Trigger  string         `json:"trigger"`
	Step     int            `json:"step"`
	Template string         `json:"template"`
	Variant  string         `json:"variant,omitempty"`
	Reason   SuppressReason `json:"reason"`
	At       string         `json:"at"`
	Until    string         `json:"until,omitempty"`
	Cap      string         `json:"cap,omitempty"`
}

// AppendSuppression appends the deterministic JSON encoding of s to b.
func AppendSuppression(b []byte, s *Suppression) ([]byte, error) {
	w := suppressionJSON{
		UserID: s.UserID, Trigger: s.Trigger, Step: s.Step, Template: s.Template,
		Variant: s.Variant, Reason: s.Reason, At: FormatTime(s.At), Cap: s.Cap,
	}
	if !s.Until.IsZero() {
		w.Until = FormatTime(s.Until)
	}
	return json.Append(b, &w, json.SortMapKeys)
}

// UnmarshalSuppression decodes a suppression record.
func UnmarshalSuppression(b []byte) (Suppression, error) {
	var w suppressionJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return Suppression{}, err
	}
	s := Suppression{UserID: w.UserID, Trigger: w.Trigger, Step: w.Step, Template: w.Template, Variant: w.Variant, Reason: w.Reason, Cap: w.Cap}
	var err error
	if s.At, err = time.Parse(time.RFC3339Nano, w.At); err != nil {
		return Suppression{}, err
	}
	if w.Until != "" {
		if s.Until, err = time.Parse(time.RFC3339Nano, w.Until); err != nil {
			return Suppression{}, err
		}
	}
	return s, nil
}
