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

// SendCommand is the value of a record on the send-commands topic: one email
// to send. It carries no wall-clock field, so the live processor and a replay
// of the same input produce the same bytes.
type SendCommand struct {
	ID       string         `json:"id"`
	UserID   string         `json:"user_id"`
	Email    string         `json:"email"`
	Trigger  string         `json:"trigger"`
	Step     int            `json:"step"`
	Template string         `json:"template"`
	Variant  string         `json:"variant"`
	Intent   string         `json:"intent"`
	SendAt   time.Time      `json:"send_at"`
	Data     map[string]any `json:"data"`
	Cause    string         `json:"cause"`
}

// sendCommandJSON fixes the encoding of SendAt: RFC 3339 in UTC.
type sendCommandJSON struct {
	ID       string         `json:"id"`
	UserID   string         `json:"user_id"`
	Email    string         `json:"email"`
	Trigger  string         `json:"trigger"`
	Step     int            `json:"step"`
	Template string         `json:"template"`
	Variant  string         `json:"variant"`
	Intent   string         `json:"intent"`
	SendAt   string         `json:"send_at"`
	Data     map[string]any `json:"data"`
	Cause    string         `json:"cause"`
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
	switch {
	case c.ID == "":
		return SendCommand{}, fmt.Errorf("decode send-command: missing id")
	case c.Email == "":
		return SendCommand{}, fmt.Errorf("decode send-command %s: missing email", c.ID)
	case c.Template == "":
		return SendCommand{}, fmt.Errorf("decode send-command %s: missing template", c.ID)
	}
	return c, nil
}

// FormatTime is the one time format of microtrigger's records: RFC 3339 in
// UTC, with fractional seconds only when there are any.
func FormatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}
