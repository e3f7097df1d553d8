package schematest

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/microtrigger/microtrigger/schema"
)

// safeField matches the fields a ValidationError may name: envelope and
// context fields, catalogued properties and traits.
var safeField = regexp.MustCompile(`^(|messageId|type|event|name|userId|anonymousId|timestamp|originalTimestamp|sentAt|receivedAt|` +
	`properties(\.(path|product_id|name|category|price|quantity|order_id|value|revenue|total|percent|element|seconds|form|position))?|` +
	`traits(\.(email|timezone|email_opt_in|lifetime_value|first_name|locale))?|` +
	`context(\.(page(\.(path|url|title|referrer))?|userAgent|timezone|locale|device(\.type)?))?)$`)

// words are all the words of the decoder's errors: sentences, reasons,
// field names and the names of catalogued events.
const words = `invalid event record is bytes over the byte limit not valid UTF a JSON object unexpected data after at
	number out of range RFC string such as T Z must be an array boolean null another type ends before its complete
	character looking for beginning key value pair element top level in escape code u hexadecimal literal numeric
	true false missing want track page screen identify or delete unknown call longer than neither nor set time
	needs more after arrived required by events between and e holds control of email address empty zone IANA
	Local lone surrogate unterminated nested deeper levels expected appears once keys equal under folding differs
	only case from magnitude are with m s h beyond float bit
	Product Viewed Added Removed to Wishlist Checkout Started Order Completed Cart Page Scrolled Element Hovered
	Clicked Heartbeat Form Submitted Video Content Playing
	messageId event name userId anonymousId timestamp originalTimestamp sentAt receivedAt properties traits context
	path url title referrer userAgent timezone locale device product_id category price quantity order_id revenue
	total percent seconds form position email_opt_in lifetime_value first_name
	too_large invalid_utf not_json duplicate_key bad_field_type unknown_type no_user_key missing_timestamp
	bad_timestamp missing_event bad_property bad_trait field_too_long ambiguous_key control_character future_timestamp`

// Safe returns an error when ve names a field the schema does not define
// or says a word that is not the decoder's own: anything else came from
// the record.
func Safe(ve *schema.ValidationError) error {
	if !safeField.MatchString(ve.Field) {
		return fmt.Errorf("field %q is not a field of the schema (%v)", ve.Field, ve)
	}
	return SafeText(ve.Error())
}

// SafeText returns an error naming the first word of s (a run of letters
// and underscores) that no error of the decoder uses.
func SafeText(s string) error {
	vocab := map[string]bool{}
	for _, w := range strings.Fields(words) {
		vocab[w] = true
	}
	for _, w := range strings.FieldsFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || r == '_')
	}) {
		if !vocab[w] {
			return fmt.Errorf("word %q is not the decoder's: %q", w, s)
		}
	}
	return nil
}
