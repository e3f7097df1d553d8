package schema

// The decoder as it was before the hand-written scanner (decode.go and
// scan.go at that time, identifiers prefixed with "ref"): segmentio/encoding
// into a wire struct, then the key check. FuzzDecodeMatchesReference holds
// DecodeEvent to it, byte for byte in its results and refusals.

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/segmentio/encoding/json"

	"github.com/microtrigger/microtrigger/schema/zoneinfo"
)

// wire is the decoding target: timestamp stays a string so that a bad one
// gets a precise reason instead of the decoder's generic error.
type refWire struct {
	MessageID   string         `json:"messageId"`
	Type        string         `json:"type"`
	Event       string         `json:"event"`
	Name        string         `json:"name"`
	UserID      string         `json:"userId"`
	AnonymousID string         `json:"anonymousId"`
	Timestamp   *string        `json:"timestamp"`
	Original    *string        `json:"originalTimestamp"`
	SentAt      *string        `json:"sentAt"`
	ReceivedAt  *string        `json:"receivedAt"`
	Properties  map[string]any `json:"properties"`
	Traits      map[string]any `json:"traits"`
	Context     *Context       `json:"context"`
}

// DecodeEvent parses and validates one event. It refuses, with a
// *ValidationError, everything a consumer could read differently from a
// validator: records over MaxEventBytes, invalid UTF-8, anything but one JSON
// object, duplicate keys, keys equal under case folding or differing only in
// case from a field it reads, fields of the wrong JSON type, unknown call
// types, no user key, a missing or unparsable timestamp, control characters
// in ids, names and the other strings that become state keys or reach
// templates, numbers in properties or traits over MaxNumber in magnitude,
// and catalogued properties or traits of the wrong type or out of range.
//
// The error names fields and byte offsets, never the record's content
// (see ValidationError).
//
// A missing messageId is replaced by a hash of the record, so redelivered
// copies of the same bytes are still recognised as duplicates.
func refDecodeEvent(b []byte) (Event, error) {
	if len(b) > MaxEventBytes {
		return Event{}, invalid(ReasonTooLarge, "", "record is %d bytes, over the %d byte limit", len(b), MaxEventBytes)
	}
	if !utf8.Valid(b) {
		return Event{}, invalid(ReasonInvalidUTF8, "", "record is not valid UTF-8")
	}
	if i := refFirstNonSpace(b); i < 0 || b[i] != '{' {
		if i < 0 || !json.Valid(b) {
			return Event{}, invalid(ReasonNotJSON, "", "record is not JSON")
		}
		return Event{}, invalid(ReasonNotJSON, "", "record is not a JSON object")
	}

	w := refWire{Properties: map[string]any{}, Traits: map[string]any{}}
	rest, err := json.Parse(b, &w, json.DontMatchCaseInsensitiveStructFields)
	if err != nil {
		return Event{}, refDecodeError(b, err)
	}
	if len(rest) != 0 {
		return Event{}, invalid(ReasonNotJSON, "", "unexpected data after the JSON object at byte %d", len(b)-len(rest))
	}
	var props []refPropertySpec
	if w.Type == TypeTrack {
		props = refCatalogue(w.Event)
	}
	if err := refCheckKeys(b, props); err != nil {
		return Event{}, err
	}
	return refFromWire(&w, b, props)
}

// firstNonSpace returns the index of the first byte that is not JSON
// whitespace, or -1.
func refFirstNonSpace(b []byte) int {
	for i, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return i
		}
	}
	return -1
}

// decodeError turns the decoder's error into a ValidationError that names
// the field (as far as the schema defines it) and kinds, never the text
// segmentio/encoding quotes from the record.
func refDecodeError(b []byte, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := refSafePath(te.Field)
		want, got := refGoKind(te.Type.Kind()), refJsonKind(te.Value)
		if want == got || strings.HasSuffix(te.Value, " overflows") {

			if ve := refCheckKeys(b, nil); ve != nil {
				return ve
			}
			return invalid(ReasonBadFieldType, field, "a number out of range")
		}
		if te.Field == "timestamp" {
			return invalid(ReasonBadTime, "timestamp", "not an RFC 3339 string such as 2026-03-02T09:00:00Z")
		}
		return invalid(ReasonBadFieldType, field, "must be %s, not %s", want, got)
	}
	return refSyntaxError(b)
}

// safePath keeps of a dotted field path the names the schema defines.
func refSafePath(p string) string {
	s := refKeyCheck{}
	kind, n := refObjEnvelope, 0
	for part := range strings.SplitSeq(p, ".") {
		name := s.name(kind, []byte(part))
		if name == "" || name != part {
			break
		}
		n += len(part) + 1
		kind = refChildKind(kind, name)
	}
	return p[:max(n-1, 0)]
}

// syntaxError says where b stops being JSON and what kind of text was
// expected there, from the standard library's scanner (which gives the
// offset segmentio/encoding does not), without the bytes themselves.
func refSyntaxError(b []byte) *ValidationError {
	var v struct{}
	var se *stdjson.SyntaxError
	if !errors.As(stdjson.Unmarshal(b, &v), &se) {
		return invalid(ReasonNotJSON, "", "record is not valid JSON")
	}
	msg := se.Error()
	if strings.HasPrefix(msg, "unexpected end") {
		return invalid(ReasonNotJSON, "", "record ends at byte %d before its JSON is complete", len(b))
	}

	for _, ctx := range [...]string{
		"looking for beginning of object key string", "looking for beginning of value",
		"after object key:value pair", "after object key", "after array element", "after top-level value",
		"in string escape code", "in \\u hexadecimal character escape", "in string literal", "in numeric literal",
		"in literal true", "in literal false", "in literal null",
	} {
		if strings.Contains(msg, " "+ctx) {
			return invalid(ReasonNotJSON, "", "not valid JSON at byte %d: unexpected character %s", se.Offset-1, ctx)
		}
	}
	return invalid(ReasonNotJSON, "", "not valid JSON at byte %d", se.Offset-1)
}

func refGoKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Map, reflect.Struct, reflect.Pointer:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Bool:
		return "a boolean"
	default:
		return "a number"
	}
}

func refJsonKind(v string) string {

	if uq, err := strconv.Unquote(v); err == nil {
		v = uq
	}
	if v == "" {
		return "another JSON type"
	}
	switch v[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func refFromWire(w *refWire, raw []byte, props []refPropertySpec) (Event, error) {
	if len(w.Properties) == 0 {
		w.Properties = nil
	}
	if len(w.Traits) == 0 {
		w.Traits = nil
	}
	ev := Event{
		MessageID:   w.MessageID,
		Type:        w.Type,
		Event:       w.Event,
		Name:        w.Name,
		UserID:      w.UserID,
		AnonymousID: w.AnonymousID,
		Properties:  w.Properties,
		Traits:      w.Traits,
	}
	if w.Context != nil {
		ev.Context = *w.Context
	}
	switch ev.Type {
	case TypeTrack, TypePage, TypeScreen, TypeIdentify, TypeDelete:
	case "":
		return Event{}, invalid(ReasonUnknownType, "type", "missing; want track, page, screen, identify or delete")
	default:
		return Event{}, invalid(ReasonUnknownType, "type", "unknown call type; want track, page, screen, identify or delete")
	}
	for _, f := range [...]struct {
		name string
		v    string
		max  int
	}{
		{"messageId", ev.MessageID, MaxIDLength},
		{"userId", ev.UserID, MaxIDLength},
		{"anonymousId", ev.AnonymousID, MaxIDLength},
		{"event", ev.Event, MaxNameLength},
		{"name", ev.Name, MaxNameLength},
		{"context.page.path", ev.Context.Page.Path, MaxPropertyLen},
		{"context.timezone", ev.Context.Timezone, 64},
	} {
		if len(f.v) > f.max {
			return Event{}, invalid(ReasonFieldTooLong, f.name, "longer than %d bytes", f.max)
		}
	}

	for _, f := range [...]struct{ name, v string }{
		{"messageId", ev.MessageID},
		{"userId", ev.UserID},
		{"anonymousId", ev.AnonymousID},
		{"event", ev.Event},
		{"name", ev.Name},
		{"context.page.path", ev.Context.Page.Path},
		{"context.page.url", ev.Context.Page.URL},
		{"context.timezone", ev.Context.Timezone},
		{"context.locale", ev.Context.Locale},
		{"context.device.type", ev.Context.Device.Type},
	} {
		if err := refCheckControl(f.name, f.v); err != nil {
			return Event{}, err
		}
	}
	if ev.UserKey() == "" {
		return Event{}, invalid(ReasonNoUserKey, "userId", "neither userId nor anonymousId is set")
	}

	ts, field := w.Timestamp, "timestamp"
	if ts == nil && w.Original != nil {
		ts, field = w.Original, "originalTimestamp"
	}
	if ts == nil || *ts == "" {
		return Event{}, invalid(ReasonMissingTime, "timestamp", "missing; want an RFC 3339 time such as 2026-03-02T09:00:00Z")
	}
	t, err := refParseTime(ts, field)
	if err != nil {
		return Event{}, err
	}
	ev.Timestamp = t

	if ev.SentAt, err = refParseTime(w.SentAt, "sentAt"); err != nil {
		return Event{}, err
	}
	if ev.ReceivedAt, err = refParseTime(w.ReceivedAt, "receivedAt"); err != nil {
		return Event{}, err
	}
	if ev.Type == TypeTrack && ev.Event == "" {
		return Event{}, invalid(ReasonMissingEvent, "event", "a track call needs an event name")
	}
	if ev.MessageID == "" {
		ev.MessageID = ContentID(raw)
	}
	if err := refCheckProperties(&ev, props); err != nil {
		return Event{}, err
	}
	if err := refCheckTraits(ev.Traits, "traits"); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// parseTime parses an optional RFC 3339 field; nil gives the zero time.
func refParseTime(v *string, field string) (time.Time, error) {
	if v == nil {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *v)
	if err != nil || !refRfc3339Shape(*v) || t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, invalid(ReasonBadTime, field, "not an RFC 3339 time such as 2026-03-02T09:00:00Z")
	}
	return t.UTC(), nil
}

// rfc3339Shape checks the date and time digits that time.Parse is lenient
// about (it takes "T9:00:00Z" for 09:00): RFC 3339 wants two of each, as
// other readers do.
func refRfc3339Shape(v string) bool {
	const shape = "dddd-dd-ddTdd:dd:dd"
	if len(v) < len(shape) {
		return false
	}
	for i := 0; i < len(shape); i++ {
		if c := v[i]; shape[i] == 'd' && (c < '0' || c > '9') || shape[i] != 'd' && c != shape[i] {
			return false
		}
	}
	return true
}

// propertyKind is the JSON type a catalogued property must have.
type refPropertyKind uint8

const (
	refKindString refPropertyKind = iota + 1
	refKindNumber
	refKindBool
)

func (k refPropertyKind) String() string {
	switch k {
	case refKindString:
		return "a string"
	case refKindNumber:
		return "a number"
	default:
		return "a boolean"
	}
}

type refPropertySpec struct {
	name     string
	kind     refPropertyKind
	required bool
	min, max float64 // for numbers
}

// catalogue lists the properties microtrigger reads from the events of
// DESIGN.md. Other events and other properties are free-form.
func refCatalogue(name string) []refPropertySpec {
	product := []refPropertySpec{
		{name: "product_id", kind: refKindString},
		{name: "name", kind: refKindString},
		{name: "category", kind: refKindString},
		{name: "price", kind: refKindNumber, min: 0, max: MaxAmount},
		{name: "quantity", kind: refKindNumber, min: 0, max: MaxAmount},
	}
	switch name {
	case "Product Viewed", "Product Added", "Product Removed", "Product Added to Wishlist":
		return product
	case "Checkout Started", "Order Completed", "Cart Viewed":
		return []refPropertySpec{
			{name: "order_id", kind: refKindString},
			{name: "value", kind: refKindNumber, min: 0, max: MaxAmount},
			{name: "revenue", kind: refKindNumber, min: 0, max: MaxAmount},
			{name: "total", kind: refKindNumber, min: 0, max: MaxAmount},
		}
	case "Page Scrolled":
		return []refPropertySpec{{name: "percent", kind: refKindNumber, required: true, min: 0, max: 100}}
	case "Element Hovered", "Element Clicked":
		return []refPropertySpec{{name: "element", kind: refKindString, required: true}}
	case "Page Heartbeat":
		return []refPropertySpec{{name: "seconds", kind: refKindNumber, required: true, min: 0, max: 86400}}
	case "Form Started", "Form Submitted":
		return []refPropertySpec{{name: "form", kind: refKindString, required: true}}
	case "Video Content Playing":
		return []refPropertySpec{{name: "position", kind: refKindNumber, required: true, min: 0, max: MaxAmount}}
	}
	return nil
}

func refCheckProperties(ev *Event, props []refPropertySpec) error {
	if v, ok := ev.Properties["path"]; ok {
		p, isStr := v.(string)
		if !isStr && (ev.Type == TypePage || ev.Type == TypeScreen) {
			return invalid(ReasonBadProperty, "properties.path", "must be a string")
		}

		if err := refCheckControl("properties.path", p); err != nil {
			return err
		}
	}
	for _, p := range props {
		v, ok := ev.Properties[p.name]
		field := "properties." + p.name
		if !ok || v == nil {
			if p.required {
				return invalid(ReasonBadProperty, field, "required by %q events", ev.Event)
			}
			continue
		}
		if err := refCheckValue(&p, v, field, ReasonBadProperty); err != nil {
			return err
		}
	}
	return nil
}

// checkValue checks v, the value of a catalogued property or trait.
func refCheckValue(p *refPropertySpec, v any, field string, r Reason) error {
	switch p.kind {
	case refKindString:
		s, isStr := v.(string)
		if !isStr {
			return invalid(r, field, "must be %s", p.kind)
		}
		if len(s) > MaxPropertyLen {
			return invalid(ReasonFieldTooLong, field, "longer than %d bytes", MaxPropertyLen)
		}
		return refCheckControl(field, s)
	case refKindNumber:
		f, isNum := v.(float64)
		if !isNum || math.IsNaN(f) || math.IsInf(f, 0) {
			return invalid(r, field, "must be %s", p.kind)
		}
		if f < p.min || f > p.max {
			return invalid(r, field, "must be between %g and %g", p.min, p.max)
		}
	case refKindBool:
		if _, isBool := v.(bool); !isBool {
			return invalid(r, field, "must be %s", p.kind)
		}
	}
	return nil
}

// checkControl refuses a control character in v: C0 (U+0000–U+001F),
// DEL (U+007F) and C1 (U+0080–U+009F). They would end up in state keys,
// logs of other systems and email headers, where they split lines, hide
// text or end strings early.
func refCheckControl(field, v string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c == 0x7f || c == 0xc2 && i+1 < len(v) && v[i+1] >= 0x80 && v[i+1] <= 0x9f {
			return invalid(ReasonControlChar, field, "holds a control character at byte %d of its value", i)
		}
	}
	return nil
}

// traitSpecs are the identify traits microtrigger reads, in the order
// they are checked.
func refTraitSpecs() [6]refPropertySpec {
	return [...]refPropertySpec{
		{name: "email", kind: refKindString},
		{name: "timezone", kind: refKindString},
		{name: "email_opt_in", kind: refKindBool},
		{name: "lifetime_value", kind: refKindNumber, min: -MaxAmount, max: MaxAmount},
		{name: "first_name", kind: refKindString},
		{name: "locale", kind: refKindString},
	}
}

func refCheckTraits(traits map[string]any, path string) error {
	if len(traits) == 0 {
		return nil
	}
	for _, spec := range refTraitSpecs() {
		v, ok := traits[spec.name]
		if !ok || v == nil {
			continue
		}
		field := path + "." + spec.name
		if err := refCheckValue(&spec, v, field, ReasonBadTrait); err != nil {
			return err
		}
		switch spec.name {
		case "email":
			if !refPlausibleEmail(v.(string)) {
				return invalid(ReasonBadTrait, field, "not an email address")
			}
		case "timezone":
			if err := refCheckTimezone(v.(string)); err != nil {
				return invalid(ReasonBadTrait, field, "%v", err)
			}
		}
	}
	return nil
}

func refPlausibleEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && len(s) <= 254 && !strings.ContainsAny(s, " \t\r\n<>,;")
}

// CheckTimezone reports whether name is an IANA time zone a user may have:
// a zone of the database embedded in the binary (schema/zoneinfo), so that
// the answer is the same on every host. "" and "Local" are refused: they
// would make sends depend on the machine. The error never repeats name,
// which arrives in events.
func refCheckTimezone(name string) error {
	switch {
	case name == "":
		return errors.New("empty time zone: want an IANA zone name")
	case name == "Local":
		return errors.New("time zone Local is not an IANA zone name")
	case !zoneinfo.Known(name):
		return errors.New("unknown time zone")
	}
	return nil
}

// keyCheck looks for what JSON decoders let through silently, or read
// differently from one another:
//   - duplicate object keys (the last one wins, so a validator and a
//     consumer can see different events);
//   - keys of one object equal under Unicode case folding, and keys that
//     differ only in case from a field the decoder reads ("USERID" beside,
//     or instead of, "userId"): Go's encoding/json and other
//     case-insensitive readers match them to that field;
//   - lone UTF-16 surrogates in \u escapes (replaced by U+FFFD);
//   - nesting too deep to be a tracker event;
//   - numbers beyond the range of a float64 anywhere, and in properties
//     and traits numbers over MaxNumber in magnitude.
//
// It runs on input the decoder has already accepted as JSON, so it only
// walks the structure; still, it never indexes past the input. Its
// messages give byte offsets, never a key or a value.
type refKeyCheck struct {
	b     []byte
	i     int
	depth int
	err   *ValidationError
	// Keys of all open objects, innermost last, as offsets into b with
	// their fold hashes: in the array while they fit, so that a typical
	// event allocates nothing.
	keys  [64]refKey
	nkeys int
	spill []refKey
	// The key of each open object member and the kind of its object, for
	// field paths.
	path  [refMaxDepth + 1]refMember
	npath int
	// props are the catalogued properties of the event, read by name.
	props []refPropertySpec
	// numReason, inside properties or traits, is the reason of a number
	// out of range there.
	numReason Reason
}

type refSpan struct{ start, end int32 }

// key is an object key and the hash of its case-folded form.
type refKey struct {
	refSpan
	fold uint64
}

// member is an object key and the kind of the object holding it.
type refMember struct {
	refSpan
	in refObjKind
}

// objKind says which fields the decoder reads from an object.
type refObjKind uint8

const (
	refObjOther refObjKind = iota
	refObjEnvelope
	refObjContext
	refObjPage
	refObjDevice
	refObjCampaign
	refObjProperties
	refObjTraits
)

const refMaxDepth = 32

// checkKeys checks b; props are the catalogued properties of its event.
func refCheckKeys(b []byte, props []refPropertySpec) *ValidationError {
	s := refKeyCheck{b: b, props: props}
	s.ws()
	s.value(refObjEnvelope)
	return s.err
}

func (s *refKeyCheck) key(i int) refKey {
	if i < len(s.keys) {
		return s.keys[i]
	}
	return s.spill[i-len(s.keys)]
}

func (s *refKeyCheck) pushKey(k refKey) {
	if s.nkeys < len(s.keys) {
		s.keys[s.nkeys] = k
	} else {
		s.spill = append(s.spill[:s.nkeys-len(s.keys)], k)
	}
	s.nkeys++
}

// field is the path of the innermost open member, as far as it is made of
// names the decoder reads: the first other key ends it, as it may be
// personal data.
func (s *refKeyCheck) field() string {
	var b strings.Builder
	for _, m := range s.path[:s.npath] {
		k := refUnescapeKey(s.b[m.start:m.end])
		name := s.name(m.in, k)
		if name == "" || name != string(k) {
			break
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(name)
	}
	return b.String()
}

func (s *refKeyCheck) fail(r Reason, format string, args ...any) {
	if s.err == nil {
		s.err = invalid(r, s.field(), format, args...)
	}
}

func (s *refKeyCheck) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *refKeyCheck) value(kind refObjKind) {
	if s.err != nil || s.i >= len(s.b) {
		return
	}
	switch s.b[s.i] {
	case '{':
		s.object(kind)
	case '[':
		s.array()
	case '"':
		s.str()
	default:
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				s.checkNumber(start)
				return
			}
			s.i++
		}
		s.checkNumber(start)
	}
}

// checkNumber refuses a number, b[start:s.i], beyond the range of a
// float64 (1e400: most JSON readers fail on it), and inside properties and
// traits one over MaxNumber in magnitude.
func (s *refKeyCheck) checkNumber(start int) {
	if start >= s.i {
		return
	}
	if c := s.b[start]; c != '-' && (c < '0' || c > '9') {
		return
	}
	limit, r := math.MaxFloat64, ReasonBadFieldType
	if s.numReason != "" {
		limit, r = MaxNumber, s.numReason
	}
	if refNumberOver(s.b[start:s.i], limit) {
		if r == ReasonBadFieldType {
			s.fail(r, "the number at byte %d is beyond the range of a 64-bit float", start)
			return
		}
		s.fail(r, "the number at byte %d is over %g in magnitude", start, MaxNumber)
	}
}

// numberOver reports whether the JSON number n is over limit (at least
// 1e15) in magnitude; one that does not parse (it overflows a float64) is.
func refNumberOver(n []byte, limit float64) bool {
	i := 0
	if i < len(n) && n[i] == '-' {
		i++
	}
	digits := 0
	for i < len(n) && n[i] >= '0' && n[i] <= '9' {
		i++
		digits++
	}
	if digits <= 15 {
		if i < len(n) && n[i] == '.' {
			i++
			for i < len(n) && n[i] >= '0' && n[i] <= '9' {
				i++
			}
		}
		if i == len(n) {
			return false
		}
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return err != nil || math.Abs(f) > limit
}

// str skips a string and returns where its raw contents (escapes
// undecoded) are.
func (s *refKeyCheck) str() refSpan {
	start := s.i + 1
	j := start
	for j <= len(s.b) {
		q := bytes.IndexByte(s.b[j:], '"')
		if q < 0 {
			break
		}
		bs := bytes.IndexByte(s.b[j:j+q], '\\')
		if bs < 0 {
			s.i = j + q + 1
			return refSpan{int32(start), int32(j + q)}
		}
		p := j + bs
		if p+1 >= len(s.b) {
			break
		}
		if s.b[p+1] != 'u' {
			j = p + 2
			continue
		}
		r, ok := refHex4(s.b, p+2)
		if !ok {
			break
		}
		j = p + 6
		if utf16.IsSurrogate(r) {
			lo, ok2 := rune(0), false
			if r < 0xdc00 && j+1 < len(s.b) && s.b[j] == '\\' && s.b[j+1] == 'u' {
				lo, ok2 = refHex4(s.b, j+2)
			}
			if !ok2 || utf16.DecodeRune(r, lo) == 0xfffd {
				s.fail(ReasonInvalidUTF8, "lone UTF-16 surrogate in \\u escape at byte %d", p)
				return refSpan{}
			}
			j += 6
		}
	}
	s.fail(ReasonNotJSON, "unterminated string at byte %d", start-1)
	return refSpan{}
}

func refHex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(v), true
}

func (s *refKeyCheck) enter() bool {
	s.depth++
	if s.depth > refMaxDepth {
		s.fail(ReasonNotJSON, "nested deeper than %d levels at byte %d", refMaxDepth, s.i)
		return false
	}
	return true
}

func (s *refKeyCheck) object(kind refObjKind) {
	if !s.enter() {
		return
	}
	defer func() { s.depth-- }()
	s.i++
	base := s.nkeys
	defer func() { s.nkeys = base }()
	for s.err == nil {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] == '}' {
			s.i++
			return
		}
		if s.b[s.i] == ',' {
			s.i++
			continue
		}
		if s.b[s.i] != '"' {
			s.fail(ReasonNotJSON, "expected an object key at byte %d", s.i)
			return
		}
		at := s.i
		sp := s.str()
		if s.err != nil {
			return
		}
		k := refUnescapeKey(s.b[sp.start:sp.end])

		name := s.name(kind, k)
		if name != "" && name != string(k) {
			f := s.field()
			if f != "" {
				f += "."
			}
			s.err = invalid(ReasonAmbiguousKey, f+name, "the key at byte %d differs only in case from %s", at, name)
			return
		}
		s.path[s.npath] = refMember{sp, kind}
		s.npath++
		fold := refFoldHash(k)
		for i := base; i < s.nkeys; i++ {
			prev := s.key(i)
			if prev.fold != fold {
				continue
			}
			pk := refUnescapeKey(s.b[prev.start:prev.end])
			if bytes.Equal(pk, k) {
				s.fail(ReasonDuplicateKey, "the key at byte %d appears more than once in its object", at)
				return
			}
			if bytes.EqualFold(pk, k) {
				s.fail(ReasonAmbiguousKey, "the keys at bytes %d and %d are equal under case folding", prev.start-1, at)
				return
			}
		}
		s.pushKey(refKey{sp, fold})
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ':' {
			s.i++
		}
		s.ws()
		outer := s.numReason
		if kind == refObjEnvelope {
			switch name {
			case "properties":
				s.numReason = ReasonBadProperty
			case "traits":
				s.numReason = ReasonBadTrait
			}
		}
		s.value(refChildKind(kind, name))
		s.numReason = outer
		if s.err != nil {
			return
		}
		s.npath--
	}
}

func (s *refKeyCheck) array() {
	if !s.enter() {
		return
	}
	defer func() { s.depth-- }()
	s.i++
	for s.err == nil {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] == ']' {
			s.i++
			return
		}
		if s.b[s.i] == ',' {
			s.i++
			continue
		}
		s.value(refObjOther)
	}
}

// childKind is the kind of the object that is the value of field name in
// an object of kind parent.
func refChildKind(parent refObjKind, name string) refObjKind {
	switch {
	case parent == refObjEnvelope && name == "context":
		return refObjContext
	case parent == refObjEnvelope && name == "properties":
		return refObjProperties
	case parent == refObjEnvelope && name == "traits":
		return refObjTraits
	case parent == refObjContext && name == "page":
		return refObjPage
	case parent == refObjContext && name == "device":
		return refObjDevice
	case parent == refObjContext && name == "campaign":
		return refObjCampaign
	}
	return refObjOther
}

// name returns the field the decoder reads from an object of kind kind
// that k equals under case folding, or "". All those names are ASCII.
func (s *refKeyCheck) name(kind refObjKind, k []byte) string {
	if kind == refObjOther || len(k) > 64 {
		return ""
	}
	var buf [64]byte
	low, ok := refAsciiFold(buf[:0], k)
	if !ok {
		return ""
	}
	switch kind {
	case refObjEnvelope:
		switch string(low) {
		case "messageid":
			return "messageId"
		case "type":
			return "type"
		case "event":
			return "event"
		case "name":
			return "name"
		case "userid":
			return "userId"
		case "anonymousid":
			return "anonymousId"
		case "timestamp":
			return "timestamp"
		case "originaltimestamp":
			return "originalTimestamp"
		case "sentat":
			return "sentAt"
		case "receivedat":
			return "receivedAt"
		case "properties":
			return "properties"
		case "traits":
			return "traits"
		case "context":
			return "context"
		}
	case refObjContext:
		switch string(low) {
		case "page":
			return "page"
		case "useragent":
			return "userAgent"
		case "timezone":
			return "timezone"
		case "locale":
			return "locale"
		case "device":
			return "device"
		case "campaign":
			return "campaign"
		}
	case refObjPage:
		switch string(low) {
		case "path":
			return "path"
		case "url":
			return "url"
		case "title":
			return "title"
		case "referrer":
			return "referrer"
		}
	case refObjDevice:
		if string(low) == "type" {
			return "type"
		}
	case refObjCampaign:
		switch string(low) {
		case "name", "source", "medium", "term", "content":
			return string(low)
		}
	case refObjTraits:
		switch string(low) {
		case "email":
			return "email"
		case "timezone":
			return "timezone"
		case "email_opt_in":
			return "email_opt_in"
		case "lifetime_value":
			return "lifetime_value"
		case "first_name":
			return "first_name"
		case "locale":
			return "locale"
		}
	case refObjProperties:

		if string(low) == "path" {
			return "path"
		}
		for i := range s.props {
			if string(low) == s.props[i].name {
				return s.props[i].name
			}
		}
	}
	return ""
}

// asciiFold appends to dst the lower-case ASCII form of k when every rune
// of k folds to an ASCII one, as every name the decoder reads is ASCII.
// Besides ASCII letters, only U+212A KELVIN SIGN (k) and U+017F LATIN
// SMALL LETTER LONG S (s) fold to ASCII under Unicode simple case folding.
func refAsciiFold(dst, k []byte) ([]byte, bool) {
	for i := 0; i < len(k); {
		c := k[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(k[i:])
		i += n
		switch r {
		case '\u212a':
			dst = append(dst, 'k')
		case '\u017f':
			dst = append(dst, 's')
		default:
			return dst, false
		}
	}
	return dst, true
}

// foldHash hashes (FNV-1a) k case-folded: keys equal under
// bytes.EqualFold hash alike.
func refFoldHash(k []byte) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(k); {
		c := k[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			h = (h ^ uint64(c)) * 1099511628211
			i++
			continue
		}
		r, n := utf8.DecodeRune(k[i:])
		i += n
		h = (h ^ uint64(refFoldRune(r))) * 1099511628211
	}
	return h
}

// foldRune returns the smallest rune of r's simple case-folding orbit:
// two runes are equal under folding when their foldRune is. For ASCII
// letters it is the upper-case one.
func refFoldRune(r rune) rune {
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}

// unescapeKey returns the string a raw key denotes, decoding JSON escapes
// (rare: only then does it allocate).
func refUnescapeKey(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	var v string
	if err := json.Unmarshal(q, &v); err != nil {
		return raw
	}
	return []byte(v)
}
