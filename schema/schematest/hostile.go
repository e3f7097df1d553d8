package schematest

import (
	"strings"

	"github.com/microtrigger/microtrigger/schema"
)

// Case is one hostile record.
type Case struct {
	Name string
	Raw  []byte
	// Reason is the refusal expected ("" for a record that is accepted).
	// ReasonFutureTime is only found by schema.CheckArrival with a
	// positive skew bound.
	Reason schema.Reason
}

// Hostile returns the corpus with sentinel (a string of letters, digits and
// dashes, such as "SENTINEL-7f3a") planted in every field. No record holds
// a newline byte, so the corpus is also a JSONL file.
func Hostile(sentinel string) []Case {
	s := sentinel
	low, up := strings.ToLower(s), strings.ToUpper(s)
	email := s + "@example.com"
	r := strings.NewReplacer("‹s›", s, "‹e›", email)
	// ‹s› stands for the sentinel, ‹e› for an address made of it. ctx
	// and props hold them in values and keys.
	ctx := r.Replace(`"context":{"page":{"path":"/‹s›","url":"https://‹s›.example/‹s›","title":"‹s›","referrer":"‹s›"},"userAgent":"‹s›","locale":"‹s›","timezone":"UTC","device":{"type":"‹s›"},"‹s›":"‹s›"}`)
	props := r.Replace(`"properties":{"‹s›":"‹s›","‹e›":"‹e›","‹s›-n":1,"‹s›-list":["‹s›",{"‹s›":"‹s›"}]}`)
	env := func(fields string) string {
		return r.Replace(`{"messageId":"‹s›-m","userId":"‹s›-u","anonymousId":"‹s›-a",`) + fields + "," + ctx + "}"
	}
	track := func(fields string) string {
		return env(r.Replace(`"type":"track","event":"‹s› Event","timestamp":"2026-03-02T09:00:00Z",`) + fields)
	}
	ok := track(props)
	cases := []Case{
		{"accepted track", []byte(ok), ""},
		{"accepted identify", []byte(env(r.Replace(`"type":"identify","timestamp":"2026-03-02T09:00:00Z","traits":{"email":"‹e›","first_name":"‹s›","timezone":"Asia/Tokyo","‹s›":"‹s›","‹e›":1}`))), ""},
		{"accepted page, unknown context zone", []byte(strings.Replace(env(r.Replace(`"type":"page","name":"‹s›","timestamp":"2026-03-02T09:00:00Z",`)+props), `"timezone":"UTC"`, `"timezone":"`+s+`/Zone"`, 1)), ""},

		{"over 32 KiB", []byte(track(r.Replace(`"properties":{"‹s›":"`) + strings.Repeat(s, schema.MaxEventBytes/len(s)+1) + `"}`)), schema.ReasonTooLarge},
		{"invalid UTF-8", []byte(track(r.Replace(`"properties":{"‹s›":"‹s›`) + "\xff\xfe" + `"}`)), schema.ReasonInvalidUTF8},
		{"lone surrogate", []byte(track(r.Replace(`"properties":{"‹e›":"‹s›\udc00"}`))), schema.ReasonInvalidUTF8},

		{"plain text", []byte(r.Replace(`‹s› ‹e›`)), schema.ReasonNotJSON},
		{"a JSON string", []byte(r.Replace(`"‹s› ‹e›"`)), schema.ReasonNotJSON},
		{"a JSON array", []byte(r.Replace(`["‹s›","‹e›"]`)), schema.ReasonNotJSON},
		{"bare word as a value", []byte(r.Replace(`{"type":"track","userId":‹s›,"event":"‹s›"}`)), schema.ReasonNotJSON},
		{"bare word in properties", []byte(track(r.Replace(`"properties":{"‹e›":‹s›}`))), schema.ReasonNotJSON},
		{"key without colon", []byte(r.Replace(`{"userId":"‹s›","‹e›" "‹s›"}`)), schema.ReasonNotJSON},
		{"truncated in a string", []byte(r.Replace(`{"type":"track","userId":"‹s›","event":"‹e›`)), schema.ReasonNotJSON},
		{"truncated after a key", []byte(r.Replace(`{"type":"track","userId":"‹s›","‹e›"`)), schema.ReasonNotJSON},
		{"data after the object", []byte(ok + r.Replace(` ‹s› ‹e›`)), schema.ReasonNotJSON},
		{"second object after the object", []byte(ok + r.Replace(`{"‹s›":"‹e›"}`)), schema.ReasonNotJSON},
		{"bad escape", []byte(r.Replace(`{"type":"track","userId":"‹s›\x-‹e›","event":"‹s›"}`)), schema.ReasonNotJSON},
		{"raw control byte in a string", []byte(r.Replace(`{"type":"track","userId":"‹s›` + "\x01" + `‹e›","event":"‹s›"}`)), schema.ReasonNotJSON},
		{"bad literal", []byte(r.Replace(`{"type":"track","userId":"‹s›","event":"‹s›","properties":{"‹e›":t‹s›}}`)), schema.ReasonNotJSON},
		{"bad number", []byte(r.Replace(`{"type":"track","userId":"‹s›","event":"‹s›","properties":{"‹e›":01‹s›}}`)), schema.ReasonNotJSON},
		{"nested too deep", []byte(track(r.Replace(`"properties":{"‹s›":`) + strings.Repeat(r.Replace(`{"‹e›":`), 40) + "1" + strings.Repeat("}", 41))), schema.ReasonNotJSON},

		{"duplicate userId", []byte(track(r.Replace(`"properties":{"‹s›":"‹s›"},"userId":"‹e›"`))), schema.ReasonDuplicateKey},
		{"duplicate personal key", []byte(track(r.Replace(`"properties":{"‹e›":"‹s›","‹e›":"‹s›"}`))), schema.ReasonDuplicateKey},
		{"duplicate key in context", []byte(strings.Replace(track(props), r.Replace(`"‹s›":"‹s›"}}`), r.Replace(`"‹s›":"‹s›","‹s›":"‹e›"}}`), 1)), schema.ReasonDuplicateKey},

		{"userId and userid", []byte(track(r.Replace(`"userid":"‹e›",`) + props)), schema.ReasonAmbiguousKey},
		{"timestamp and Timestamp", []byte(track(`"Timestamp":"2026-03-01T09:00:00Z",` + props)), schema.ReasonAmbiguousKey},
		{"USERID instead of userId", []byte(strings.Replace(track(props), `"userId"`, `"USERID"`, 1)), schema.ReasonAmbiguousKey},
		{"personal keys equal under folding", []byte(track(`"properties":{"` + s + `":1,"` + low + `":2,"` + up + `":3}`)), schema.ReasonAmbiguousKey},
		{"Price of a product", []byte(strings.Replace(track(r.Replace(`"properties":{"‹e›":"‹s›","Price":1}`)), r.Replace("‹s› Event"), "Product Added", 1)), schema.ReasonAmbiguousKey},
		{"Email trait", []byte(env(r.Replace(`"type":"identify","timestamp":"2026-03-02T09:00:00Z","traits":{"Email":"‹e›","‹s›":"‹s›"}`))), schema.ReasonAmbiguousKey},

		{"userId a number", []byte(strings.Replace(track(props), r.Replace(`"userId":"‹s›-u"`), `"userId":42`, 1)), schema.ReasonBadFieldType},
		{"context.page a string", []byte(r.Replace(`{"type":"page","userId":"‹s›","timestamp":"2026-03-02T09:00:00Z","context":{"page":"‹e›"},"properties":{"‹e›":"‹s›"}}`)), schema.ReasonBadFieldType},
		{"properties a string", []byte(track(r.Replace(`"properties":"‹e›"`))), schema.ReasonBadFieldType},
		{"number beyond float64 outside properties", []byte(track(props + r.Replace(`,"integrations":{"‹e›":1e400}`))), schema.ReasonBadFieldType},

		{"unknown type", []byte(strings.Replace(track(props), `"type":"track"`, r.Replace(`"type":"‹s›"`), 1)), schema.ReasonUnknownType},
		{"no type", []byte(strings.Replace(track(props), `"type":"track",`, "", 1)), schema.ReasonUnknownType},
		{"no user key", []byte(r.Replace(`{"messageId":"‹s›","type":"track","event":"‹s›","userId":"","timestamp":"2026-03-02T09:00:00Z",`) + props + "}"), schema.ReasonNoUserKey},
		{"no timestamp", []byte(strings.Replace(track(props), `"timestamp":"2026-03-02T09:00:00Z",`, "", 1)), schema.ReasonMissingTime},
		{"timestamp of words", []byte(strings.Replace(track(props), `"2026-03-02T09:00:00Z"`, r.Replace(`"‹s› ‹e›"`), 1)), schema.ReasonBadTime},
		{"timestamp a number", []byte(strings.Replace(track(props), `"2026-03-02T09:00:00Z"`, `1772442000`, 1)), schema.ReasonBadTime},
		{"sentAt of words", []byte(track(r.Replace(`"sentAt":"‹s›",`) + props)), schema.ReasonBadTime},
		{"originalTimestamp of words", []byte(strings.Replace(track(r.Replace(`"originalTimestamp":"‹s›",`)+props), `"timestamp":"2026-03-02T09:00:00Z",`, "", 1)), schema.ReasonBadTime},
		{"track without name", []byte(strings.Replace(track(props), r.Replace(`"event":"‹s› Event",`), r.Replace(`"name":"‹s›",`), 1)), schema.ReasonMissingEvent},

		{"price of words", []byte(product(r, `"price":"‹s›"`)), schema.ReasonBadProperty},
		{"price 1e307", []byte(product(r, `"price":1e307`)), schema.ReasonBadProperty},
		{"price over 1e9", []byte(product(r, `"price":2e9`)), schema.ReasonBadProperty},
		{"percent out of range", []byte(strings.Replace(track(r.Replace(`"properties":{"percent":150,"‹e›":"‹s›"}`)), r.Replace("‹s› Event"), "Page Scrolled", 1)), schema.ReasonBadProperty},
		{"element a number", []byte(strings.Replace(track(r.Replace(`"properties":{"element":7,"‹e›":"‹s›"}`)), r.Replace("‹s› Event"), "Element Hovered", 1)), schema.ReasonBadProperty},
		{"required seconds missing", []byte(strings.Replace(track(props), r.Replace("‹s› Event"), "Page Heartbeat", 1)), schema.ReasonBadProperty},
		{"free-form number over 1e15", []byte(track(r.Replace(`"properties":{"‹e›":10000000000000000,"‹s›":"‹s›"}`))), schema.ReasonBadProperty},
		{"free-form number beyond float64", []byte(track(r.Replace(`"properties":{"‹e›":{"‹s›":[1e400]}}`))), schema.ReasonBadProperty},
		{"page path a number", []byte(r.Replace(`{"type":"page","userId":"‹s›","timestamp":"2026-03-02T09:00:00Z","properties":{"path":7,"‹e›":"‹s›"}}`)), schema.ReasonBadProperty},

		{"email not an address", []byte(identify(r, `"email":"‹s›"`)), schema.ReasonBadTrait},
		{"unknown time zone", []byte(identify(r, `"timezone":"‹s›/‹e›"`)), schema.ReasonBadTrait},
		{"consent of words", []byte(identify(r, `"email_opt_in":"‹s›"`)), schema.ReasonBadTrait},
		{"lifetime value over 1e9", []byte(identify(r, `"lifetime_value":5e9`)), schema.ReasonBadTrait},
		{"free-form trait over 1e15", []byte(identify(r, `"‹s›-score":1e20`)), schema.ReasonBadTrait},

		{"userId too long", []byte(strings.Replace(track(props), r.Replace(`"userId":"‹s›-u"`), `"userId":"`+strings.Repeat(s, schema.MaxIDLength/len(s)+1)+`"`, 1)), schema.ReasonFieldTooLong},
		{"event name too long", []byte(strings.Replace(track(props), r.Replace(`"event":"‹s› Event"`), `"event":"`+strings.Repeat(s, schema.MaxNameLength/len(s)+1)+`"`, 1)), schema.ReasonFieldTooLong},
		{"product name too long", []byte(product(r, `"name":"`+strings.Repeat(s, schema.MaxPropertyLen/len(s)+1)+`"`)), schema.ReasonFieldTooLong},

		{"NUL in userId", []byte(strings.Replace(track(props), r.Replace(`"userId":"‹s›-u"`), r.Replace(`"userId":"‹s›\u0000‹e›"`), 1)), schema.ReasonControlChar},
		{"newline in messageId", []byte(strings.Replace(track(props), r.Replace(`"messageId":"‹s›-m"`), r.Replace(`"messageId":"‹s›\nE"`), 1)), schema.ReasonControlChar},
		{"C1 in event name", []byte(strings.Replace(track(props), r.Replace(`"event":"‹s› Event"`), r.Replace(`"event":"‹s›\u0085‹e›"`), 1)), schema.ReasonControlChar},
		{"CRLF in page path", []byte(strings.Replace(track(props), r.Replace(`"path":"/‹s›"`), r.Replace(`"path":"/‹s›\r\nSet-Cookie: ‹e›"`), 1)), schema.ReasonControlChar},
		{"escape in first name", []byte(identify(r, `"first_name":"‹s›\u001b[2J"`)), schema.ReasonControlChar},

		{"stamped 2099, received 2026", []byte(strings.Replace(track(`"receivedAt":"2026-03-02T09:00:00Z",`+props), `"timestamp":"2026-03-02T09:00:00Z"`, `"timestamp":"2099-03-02T09:00:00Z"`, 1)), schema.ReasonFutureTime},
	}
	return cases
}

func product(r *strings.Replacer, field string) string {
	return r.Replace(`{"messageId":"‹s›-m","type":"track","event":"Product Added","userId":"‹s›-u","timestamp":"2026-03-02T09:00:00Z","properties":{"product_id":"‹s›","‹e›":"‹s›",` + field + `}}`)
}

func identify(r *strings.Replacer, trait string) string {
	return r.Replace(`{"messageId":"‹s›-m","type":"identify","userId":"‹s›-u","timestamp":"2026-03-02T09:00:00Z","traits":{"‹e›":"‹s›",` + trait + `}}`)
}
