package schema

import "fmt"

// Reason is the machine-readable cause of a rejected record. It is the
// dead-letter record's reason and a label of the rejection metrics, so the
// set is closed and stable.
type Reason string

// Rejection reasons of DecodeEvent.
const (
	ReasonTooLarge     Reason = "too_large"
	ReasonInvalidUTF8  Reason = "invalid_utf8"
	ReasonNotJSON      Reason = "not_json"
	ReasonDuplicateKey Reason = "duplicate_key"
	ReasonBadFieldType Reason = "bad_field_type"
	ReasonUnknownType  Reason = "unknown_type"
	ReasonNoUserKey    Reason = "no_user_key"
	ReasonMissingTime  Reason = "missing_timestamp"
	ReasonBadTime      Reason = "bad_timestamp"
	ReasonMissingEvent Reason = "missing_event"
	ReasonBadProperty  Reason = "bad_property"
	ReasonBadTrait     Reason = "bad_trait"
	ReasonFieldTooLong Reason = "field_too_long"
	// ReasonAmbiguousKey: an object holds two keys equal under Unicode
	// case folding ("userId" and "userid"), or a key that differs only in
	// case from a field the decoder reads ("USERID"). Case-insensitive
	// readers (Go's encoding/json, warehouses that fold column names) would
	// take another value than microtrigger did.
	ReasonAmbiguousKey Reason = "ambiguous_key"
	// ReasonControlChar: a control character (U+0000–U+001F,
	// U+007F–U+009F) in an id, a name or another string that becomes a
	// state key or reaches templates.
	ReasonControlChar Reason = "control_character"
	// ReasonFutureTime is CheckArrival's: the event time is too far after
	// the event's arrival.
	ReasonFutureTime Reason = "future_timestamp"
)

// EventReasons lists every rejection reason DecodeEvent can return.
func EventReasons() []Reason {
	return []Reason{
		ReasonTooLarge, ReasonInvalidUTF8, ReasonNotJSON, ReasonDuplicateKey,
		ReasonBadFieldType, ReasonUnknownType, ReasonNoUserKey, ReasonMissingTime,
		ReasonBadTime, ReasonMissingEvent, ReasonBadProperty, ReasonBadTrait,
		ReasonFieldTooLong, ReasonAmbiguousKey, ReasonControlChar, ReasonFutureTime,
	}
}

// ValidationError says why an event was refused. Field is a JSON path such
// as "properties.price", made only of names the schema defines (envelope
// and context fields, catalogued properties and traits): a key the schema
// does not know may itself be personal data ({"ada@example.com": 1}), so
// the path stops before it and Msg gives its byte offset instead. Msg is a
// sentence for people naming kinds and positions. Neither holds a byte of
// the event's values or of its other keys, so the error is safe to log, to
// put in a dead-letter header and in a report.
type ValidationError struct {
	Reason Reason
	Field  string
	Msg    string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("invalid event: %s: %s", e.Reason, e.Msg)
	}
	return fmt.Sprintf("invalid event: %s: %s: %s", e.Reason, e.Field, e.Msg)
}

func invalid(r Reason, field, format string, args ...any) *ValidationError {
	return &ValidationError{Reason: r, Field: field, Msg: fmt.Sprintf(format, args...)}
}
