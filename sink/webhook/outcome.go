package webhook

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/segmentio/encoding/json"
)

// Outcome is the value of a sink-outcomes record: one SendGrid event about
// a message of ours, as the webhook received it. The record's key is the
// user key, so with sink-outcomes co-partitioned with send-commands it
// lands in the partition number of the command it is about, which the sink
// owning that partition reads.
//
// SendGrid posts events only for messages it accepted, each with the
// message's custom arguments: an Outcome with a CommandID proves that
// SendGrid accepted that command, whatever its Event. The records are also
// the webhook's durable memory of the events it has published (ID), which
// every webhook instance reads back.
type Outcome struct {
	// ID is the event's id: "sg:" + sg_event_id (or a hash of the event
	// when SendGrid gave none), the messageId of the event published into
	// events.
	ID string `json:"id"`
	// Event is SendGrid's type: processed, delivered, deferred, open…
	Event string `json:"event"`
	// CommandID is the command_id custom argument; empty for an event of
	// a message the sink did not send.
	CommandID string `json:"command_id,omitempty"`
	// At is SendGrid's time of the event.
	At time.Time `json:"at"`
}

// Bounds of an Outcome's fields: SendGrid's sg_event_id is at most 100
// characters; command ids are 32 hex digits.
const (
	maxOutcomeID    = 160
	maxOutcomeField = 128
)

// MarshalOutcome encodes o as a sink-outcomes record value.
func MarshalOutcome(o *Outcome) ([]byte, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	return json.Marshal(o)
}

// UnmarshalOutcome decodes a sink-outcomes record value.
func UnmarshalOutcome(b []byte) (Outcome, error) {
	var o Outcome
	if err := json.Unmarshal(b, &o); err != nil {
		return Outcome{}, fmt.Errorf("webhook: decode outcome: %w", err)
	}
	if err := o.check(); err != nil {
		return Outcome{}, err
	}
	return o, nil
}

func (o *Outcome) check() error {
	switch {
	case o.ID == "" || len(o.ID) > maxOutcomeID || !utf8.ValidString(o.ID):
		return fmt.Errorf("webhook: outcome has no id or one over %d bytes", maxOutcomeID)
	case o.Event == "" || len(o.Event) > maxOutcomeField || !utf8.ValidString(o.Event):
		return fmt.Errorf("webhook: outcome %s has no event type or one over %d bytes", o.ID, maxOutcomeField)
	case len(o.CommandID) > maxOutcomeField || !utf8.ValidString(o.CommandID):
		return fmt.Errorf("webhook: outcome %s has a command id over %d bytes", o.ID, maxOutcomeField)
	}
	return nil
}
