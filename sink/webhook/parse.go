package webhook

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/encoding/json"
)

// Event is one SendGrid webhook event.
type Event struct {
	Type       string
	Timestamp  time.Time
	EventID    string // sg_event_id
	URL        string // click
	Reason     string // bounce, dropped
	BounceType string // bounce: bounce or blocked
	// Args are the event's other string fields: the message's custom
	// arguments (command_id, user_id, trigger, step, template, variant).
	Args map[string]string
	// Raw is the event's JSON object.
	Raw []byte
}

// known reports whether a field is one of SendGrid's own, never taken for a
// custom argument.
func known(field string) bool {
	switch field {
	case
		"email", "timestamp", "event", "sg_event_id", "sg_message_id",
		"url", "url_offset", "reason", "type", "status", "response",
		"attempt", "category", "asm_group_id", "ip", "useragent", "tls",
		"cert_err", "smtp-id", "marketing_campaign_id", "marketing_campaign_name",
		"pool", "sg_machine_open", "bounce_classification":
		return true
	}
	return false
}

// MaxEvents bounds the events of one request.
const MaxEvents = 10000

// ParseEvents decodes a webhook body: a JSON array of event objects, each
// with a string "event" and a numeric "timestamp" (unix seconds). Its
// errors give positions (a byte offset, an event's index) and never quote
// the body, which holds addresses and user ids: they are answered to the
// caller and logged.
func ParseEvents(body []byte) ([]Event, error) {
	if !utf8.Valid(body) {
		return nil, errors.New("webhook body is not valid UTF-8")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, notAnArray(body)
	}
	if len(raws) > MaxEvents {
		return nil, fmt.Errorf("webhook body holds %d events, over %d", len(raws), MaxEvents)
	}
	if raws == nil {
		return nil, errors.New("webhook body is not a JSON array")
	}
	out := make([]Event, 0, len(raws))
	for i, raw := range raws {
		var fields map[string]any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&fields); err != nil || fields == nil {
			return nil, fmt.Errorf("event %d is not a JSON object", i)
		}
		e := Event{Args: map[string]string{}, Raw: raw}
		var ok bool
		if e.Type, ok = fields["event"].(string); !ok || e.Type == "" {
			return nil, fmt.Errorf("event %d: no event type", i)
		}
		n, ok := fields["timestamp"].(json.Number)
		if !ok {
			return nil, fmt.Errorf("event %d: no numeric timestamp", i)
		}
		ts, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.IsNaN(ts) || ts < 0 || ts > 253402300799 { // year 9999
			return nil, fmt.Errorf("event %d: timestamp out of range", i)
		}
		sec, frac := math.Modf(ts)
		e.Timestamp = time.Unix(int64(sec), int64(frac*1e9)).UTC()
		e.EventID, _ = fields["sg_event_id"].(string)
		e.URL, _ = fields["url"].(string)
		e.Reason, _ = fields["reason"].(string)
		e.BounceType, _ = fields["type"].(string)
		for k, v := range fields {
			if known(k) {
				continue
			}
			switch v := v.(type) {
			case string:
				e.Args[k] = v
			case json.Number:
				e.Args[k] = string(v)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// notAnArray says why body is not a JSON array: where it stops being JSON,
// by the standard library's scanner (segmentio/encoding gives no offset
// and quotes the bytes), or that it is JSON of another kind.
func notAnArray(body []byte) error {
	var v []stdjson.RawMessage
	var se *stdjson.SyntaxError
	switch {
	case !errors.As(stdjson.Unmarshal(body, &v), &se):
	case strings.HasPrefix(se.Error(), "unexpected end"):
		return fmt.Errorf("webhook body ends at byte %d before its JSON is complete", len(body))
	default:
		return fmt.Errorf("webhook body is not valid JSON at byte %d", se.Offset-1)
	}
	return errors.New("webhook body is not a JSON array")
}
