package schema

import (
	"fmt"
	"time"

	"github.com/segmentio/encoding/json"
)

// Intent levels of a trigger: how soon after it fires its email must land.
const (
	IntentHigh = "high" // within 15 minutes
	IntentMid  = "mid"  // within 3 hours
	IntentLow  = "low"  // within 24 hours
)

// IntentWindow is how long an email of the given intent stays worth
// sending after its send_at: 15 minutes for high, 3 hours for mid, 24
// hours for low; 0 for an unknown intent.
func IntentWindow(intent string) time.Duration {
	switch intent {
	case IntentHigh:
		return 15 * time.Minute
	case IntentMid:
		return 3 * time.Hour
	case IntentLow:
		return 24 * time.Hour
	}
	return 0
}

// SendCommand is the value of a record on the send-commands topic: one email
// to send. It carries no wall-clock field, so the live processor and a replay
// of the same input produce the same bytes: SendAt and ExpiresAt are logical
// times.
type SendCommand struct {
	ID       string    `json:"id"`
	UserID   string    `json:"user_id"`
	Email    string    `json:"email"`
	Trigger  string    `json:"trigger"`
	Step     int       `json:"step"`
	Template string    `json:"template"`
	Variant  string    `json:"variant"`
	Intent   string    `json:"intent"`
	SendAt   time.Time `json:"send_at"`
	// ExpiresAt is the end of the window in which the email may still go
	// out: SendAt plus the trigger's expire_after, or its intent's window.
	// A sink whose clock has passed it does not deliver the command. Zero
	// in a command written before the field existed: see [SendCommand.Expiry].
	ExpiresAt time.Time      `json:"expires_at"`
	Data      map[string]any `json:"data"`
	Cause     string         `json:"cause"`
}

// Expiry is the command's ExpiresAt or, for a command without one, SendAt
// plus its intent's window (the longest window, low's, for an intent this
// version does not know: a late email over a lost one where the contract
// says nothing).
func (c *SendCommand) Expiry() time.Time {
	if !c.ExpiresAt.IsZero() {
		return c.ExpiresAt
	}
	w := IntentWindow(c.Intent)
	if w == 0 {
		w = IntentWindow(IntentLow)
	}
	return c.SendAt.Add(w)
}

// sendCommandJSON fixes the encoding of the times: RFC 3339 in UTC.
// expires_at is omitted when zero, so that a command without one encodes
// as it did before the field existed.
type sendCommandJSON struct {
	ID        string         `json:"id"`
	UserID    string         `json:"user_id"`
	Email     string         `json:"email"`
	Trigger   string         `json:"trigger"`
	Step      int            `json:"step"`
	Template  string         `json:"template"`
	Variant   string         `json:"variant"`
	Intent    string         `json:"intent"`
	SendAt    string         `json:"send_at"`
	ExpiresAt string         `json:"expires_at,omitempty"`
	Data      map[string]any `json:"data"`
	Cause     string         `json:"cause"`
}

// MarshalCommand encodes a command deterministically: fields in contract
// order, map keys sorted, times in UTC.
func MarshalCommand(c *SendCommand) ([]byte, error) {
	return AppendCommand(nil, c)
}

// AppendCommand appends the encoding of MarshalCommand to b.
func AppendCommand(b []byte, c *SendCommand) ([]byte, error) {
	data := c.Data
	if data == nil {
		data = map[string]any{}
	}
	w := sendCommandJSON{
		ID: c.ID, UserID: c.UserID, Email: c.Email, Trigger: c.Trigger, Step: c.Step,
		Template: c.Template, Variant: c.Variant, Intent: c.Intent,
		SendAt: FormatTime(c.SendAt), Data: data, Cause: c.Cause,
	}
	if !c.ExpiresAt.IsZero() {
		w.ExpiresAt = FormatTime(c.ExpiresAt)
	}
	return json.Append(b, &w, json.SortMapKeys)
}

// UnmarshalCommand decodes and checks a send-command.
func UnmarshalCommand(b []byte) (SendCommand, error) {
	var w sendCommandJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return SendCommand{}, fmt.Errorf("decode send-command: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, w.SendAt)
	if err != nil {
		return SendCommand{}, fmt.Errorf("decode send-command: send_at: %w", err)
	}
	c := SendCommand{
		ID: w.ID, UserID: w.UserID, Email: w.Email, Trigger: w.Trigger, Step: w.Step,
		Template: w.Template, Variant: w.Variant, Intent: w.Intent,
		SendAt: t.UTC(), Data: w.Data, Cause: w.Cause,
	}
	// Commands written before expires_at existed have none; Expiry derives
	// it from the intent.
	if w.ExpiresAt != "" {
		x, err := time.Parse(time.RFC3339Nano, w.ExpiresAt)
		if err != nil {
			return SendCommand{}, fmt.Errorf("decode send-command %s: expires_at: %w", w.ID, err)
		}
		c.ExpiresAt = x.UTC()
	}
	switch {
	case c.ID == "":
		return SendCommand{}, fmt.Errorf("decode send-command: missing id")
	case c.Email == "":
		return SendCommand{}, fmt.Errorf("decode send-command %s: missing email", c.ID)
	case c.Template == "":
		return SendCommand{}, fmt.Errorf("decode send-command %s: missing template", c.ID)
	case !c.ExpiresAt.IsZero() && !c.ExpiresAt.After(c.SendAt):
		return SendCommand{}, fmt.Errorf("decode send-command %s: expires_at is not after send_at", c.ID)
	}
	return c, nil
}

// FormatTime is the one time format of microtrigger's records: RFC 3339 in
// UTC, with fractional seconds only when there are any.
func FormatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}
