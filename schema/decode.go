package schema

import (
	stdjson "encoding/json"
	"errors"
	"math"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/microtrigger/microtrigger/schema/zoneinfo"
)

// Limits of an accepted event. Segment's own API refuses calls over 32 KB.
const (
	MaxEventBytes  = 32 << 10
	MaxIDLength    = 256 // messageId, userId, anonymousId
	MaxNameLength  = 256 // event and page names
	MaxPropertyLen = 2048
	// MaxAmount bounds the catalogued amounts and counts (price, quantity,
	// value, revenue, total, position, traits.lifetime_value): far above
	// any real cart in any currency's main unit, and small enough that
	// products and sums of them stay finite.
	MaxAmount = 1e9
	// MaxNumber bounds the magnitude of every number in properties and
	// traits, however deep: integers up to it are exact in a float64
	// (2^53 ≈ 9e15), and sums of the numbers a user's state keeps stay
	// finite, so no rule or aggregate computes +Inf or NaN.
	MaxNumber = 1e15
)

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
//
// The Event shares no memory with b, which the caller may reuse.
func DecodeEvent(b []byte) (Event, error) {
	if len(b) > MaxEventBytes {
		return Event{}, invalid(ReasonTooLarge, "", "record is %d bytes, over the %d byte limit", len(b), MaxEventBytes)
	}
	if !utf8.Valid(b) {
		return Event{}, invalid(ReasonInvalidUTF8, "", "record is not valid UTF-8")
	}
	start := firstNonSpace(b)
	if start < 0 || b[start] != '{' {
		if start < 0 || !validJSON(b) {
			return Event{}, invalid(ReasonNotJSON, "", "record is not JSON")
		}
		return Event{}, invalid(ReasonNotJSON, "", "record is not a JSON object")
	}
	d := decoder{b: b, i: start}
	d.plain, d.ctl = scanRecord(b)
	d.envelope()
	switch d.fail {
	case failSyntax:
		return Event{}, syntaxError(b)
	case failType:
		// A syntax error anywhere in the object comes first.
		v := decoder{b: b, i: start}
		if v.deepSkip(""); v.fail != 0 {
			return Event{}, syntaxError(b)
		}
		return Event{}, d.te.error(b)
	}
	end := d.i
	d.ws()
	if d.i != len(b) {
		return Event{}, invalid(ReasonNotJSON, "", "unexpected data after the JSON object at byte %d", d.i)
	}
	_ = end
	var specs [5]propertySpec
	var props []propertySpec
	if d.ev.Type == TypeTrack {
		props = catalogue(d.ev.Event, &specs)
	}
	d.shareStrings()
	if d.suspect {
		// A copy: the key check keeps its props where escape analysis
		// loses track, and specs should stay on the stack.
		if err := checkKeys(b, append([]propertySpec(nil), props...)); err != nil {
			return Event{}, err
		}
	}
	return d.finish(props)
}

// firstNonSpace returns the index of the first byte that is not JSON
// whitespace, or -1.
func firstNonSpace(b []byte) int {
	for i, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return i
		}
	}
	return -1
}

// error says what the decoder replaced said of its first field of the
// wrong type: the field (as far as the schema defines it) and kinds, never
// the record's text.
func (te *typeError) error(b []byte) error {
	field := safePath(te.field)
	if te.overflow {
		// A number beyond float64 (1e400) in properties or traits: the
		// key check finds it, or what comes before it, and says where.
		if ve := checkKeys(b, nil); ve != nil {
			return ve
		}
		return invalid(ReasonBadFieldType, field, "a number out of range")
	}
	if te.field == "timestamp" {
		return invalid(ReasonBadTime, "timestamp", "not an RFC 3339 string such as 2026-03-02T09:00:00Z")
	}
	return invalid(ReasonBadFieldType, field, "must be %s, not %s", te.want, jsonKind(te.got))
}

// safePath keeps of a dotted field path the names the schema defines.
func safePath(p string) string {
	s := keyCheck{}
	kind, n := objEnvelope, 0
	for part := range strings.SplitSeq(p, ".") {
		name := s.name(kind, []byte(part))
		if name == "" || name != part {
			break
		}
		n += len(part) + 1
		kind = childKind(kind, name)
	}
	return p[:max(n-1, 0)]
}

// syntaxError says where b stops being JSON and what kind of text was
// expected there, from the standard library's scanner, without the bytes
// themselves. Only refused records come here.
func syntaxError(b []byte) *ValidationError {
	var v struct{}
	var se *stdjson.SyntaxError
	if !errors.As(stdjson.Unmarshal(b, &v), &se) {
		return invalid(ReasonNotJSON, "", "record is not valid JSON")
	}
	msg := se.Error()
	if strings.HasPrefix(msg, "unexpected end") {
		return invalid(ReasonNotJSON, "", "record ends at byte %d before its JSON is complete", len(b))
	}
	// The standard library's messages quote the offending character:
	// keep only the grammar context, a closed set.
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

// jsonKind names the JSON type of a value from its first byte.
func jsonKind(c byte) string {
	switch c {
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

// finish checks the fields of the event read, in the order the decoder
// replaced did, and parses its times.
func (d *decoder) finish(props []propertySpec) (Event, error) {
	ev := &d.ev
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
	// Ids and names become state keys, the rule index and merge data; the
	// page, locale and device strings reach state keys and rules too.
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
		if err := d.checkControl(f.name, f.v); err != nil {
			return Event{}, err
		}
	}
	if ev.UserKey() == "" {
		return Event{}, invalid(ReasonNoUserKey, "userId", "neither userId nor anonymousId is set")
	}
	// Segment's timestamp is the event time; a call sent without one
	// carries the device's originalTimestamp instead.
	ts, field := &d.times[tsTimestamp], "timestamp"
	if !ts.set && d.times[tsOriginal].set {
		ts, field = &d.times[tsOriginal], "originalTimestamp"
	}
	if !ts.set || ts.start == ts.end {
		return Event{}, invalid(ReasonMissingTime, "timestamp", "missing; want an RFC 3339 time such as 2026-03-02T09:00:00Z")
	}
	t, err := d.parseTime(ts, field)
	if err != nil {
		return Event{}, err
	}
	ev.Timestamp = t
	// sentAt and receivedAt bound the event time against its arrival
	// (CheckArrival); a malformed one is refused rather than ignored.
	if ev.SentAt, err = d.parseTime(&d.times[tsSentAt], "sentAt"); err != nil {
		return Event{}, err
	}
	if ev.ReceivedAt, err = d.parseTime(&d.times[tsReceivedAt], "receivedAt"); err != nil {
		return Event{}, err
	}
	if ev.Type == TypeTrack && ev.Event == "" {
		return Event{}, invalid(ReasonMissingEvent, "event", "a track call needs an event name")
	}
	if ev.MessageID == "" {
		ev.MessageID = ContentID(d.b)
	}
	if err := d.checkProperties(props); err != nil {
		return Event{}, err
	}
	if err := d.checkTraits("traits"); err != nil {
		return Event{}, err
	}
	return *ev, nil
}

// parseTime parses an optional RFC 3339 field; an absent one gives the
// zero time.
func (d *decoder) parseTime(f *timeField, field string) (time.Time, error) {
	if !f.set {
		return time.Time{}, nil
	}
	// The bytes are only read during the call: time.Parse keeps none of
	// them in the time it returns.
	v := unsafe.String(unsafe.SliceData(d.b[f.start:]), f.end-f.start)
	if f.esc {
		v = string(unescape(nil, d.b[f.start:f.end]))
	}
	// The year of the time parsed is that of the offset it was written
	// in, as time.Parse's t.Year() below.
	if t, ok := parseRFC3339(v); ok {
		if y, _ := digits(v[:4], 0, 9999); y < 1970 {
			return time.Time{}, invalid(ReasonBadTime, field, "not an RFC 3339 time such as 2026-03-02T09:00:00Z")
		}
		return t.UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || !rfc3339Shape(v) || t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, invalid(ReasonBadTime, field, "not an RFC 3339 time such as 2026-03-02T09:00:00Z")
	}
	return t.UTC(), nil
}

// rfc3339Shape checks the date and time digits that time.Parse is lenient
// about (it takes "T9:00:00Z" for 09:00): RFC 3339 wants two of each, as
// other readers do.
func rfc3339Shape(v string) bool {
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

// CheckArrival refuses an event stamped more than maxSkew after it
// arrived (reason future_timestamp): a device with a wrong clock, a
// year-2099 typo. Event time drives each partition's clock, so one such
// event would otherwise fire the pending timers of every other user on
// the partition. arrival is the event's receivedAt when set, else
// transport (the Kafka record's timestamp), else sentAt; with none of
// them, or maxSkew <= 0, nothing is checked.
func CheckArrival(ev *Event, transport time.Time, maxSkew time.Duration) error {
	arrival := ev.ReceivedAt
	if arrival.IsZero() {
		arrival = transport
	}
	if arrival.IsZero() {
		arrival = ev.SentAt
	}
	if maxSkew <= 0 || arrival.IsZero() || !ev.Timestamp.After(arrival.Add(maxSkew)) {
		return nil
	}
	return invalid(ReasonFutureTime, "timestamp", "more than %s after the event arrived", maxSkew)
}

// propertyKind is the JSON type a catalogued property must have.
type propertyKind uint8

const (
	kindString propertyKind = iota + 1
	kindNumber
	kindBool
)

func (k propertyKind) String() string {
	switch k {
	case kindString:
		return "a string"
	case kindNumber:
		return "a number"
	default:
		return "a boolean"
	}
}

type propertySpec struct {
	name     string
	kind     propertyKind
	required bool
	min, max float64 // for numbers
}

// catalogue lists the properties microtrigger reads from the events of
// DESIGN.md. Other events and other properties are free-form.
//
// The specs are written to the caller's array: a slice literal returned
// would be allocated on every call.
func catalogue(name string, specs *[5]propertySpec) []propertySpec {
	amount := func(name string) propertySpec {
		return propertySpec{name: name, kind: kindNumber, min: 0, max: MaxAmount}
	}
	switch name {
	case "Product Viewed", "Product Added", "Product Removed", "Product Added to Wishlist":
		*specs = [...]propertySpec{
			{name: "product_id", kind: kindString},
			{name: "name", kind: kindString},
			{name: "category", kind: kindString},
			amount("price"),
			amount("quantity"),
		}
		return specs[:5]
	case "Checkout Started", "Order Completed", "Cart Viewed":
		specs[0] = propertySpec{name: "order_id", kind: kindString}
		specs[1], specs[2], specs[3] = amount("value"), amount("revenue"), amount("total")
		return specs[:4]
	case "Page Scrolled":
		specs[0] = propertySpec{name: "percent", kind: kindNumber, required: true, min: 0, max: 100}
	case "Element Hovered", "Element Clicked":
		specs[0] = propertySpec{name: "element", kind: kindString, required: true}
	case "Page Heartbeat":
		specs[0] = propertySpec{name: "seconds", kind: kindNumber, required: true, min: 0, max: 86400}
	case "Form Started", "Form Submitted":
		specs[0] = propertySpec{name: "form", kind: kindString, required: true}
	case "Video Content Playing":
		specs[0] = propertySpec{name: "position", kind: kindNumber, required: true, min: 0, max: MaxAmount}
	default:
		return nil
	}
	return specs[:1]
}

func (d *decoder) checkProperties(props []propertySpec) error {
	ev := &d.ev
	if v, ok := d.read("path"); ok {
		p, isStr := v.(string)
		if !isStr && (ev.Type == TypePage || ev.Type == TypeScreen) {
			return invalid(ReasonBadProperty, "properties.path", "must be a string")
		}
		// Event.Path reads it on every call: it keys page state.
		if err := d.checkControl("properties.path", p); err != nil {
			return err
		}
	}
	for i := range props {
		p := &props[i]
		v, ok := d.read(p.name)
		if !ok || v == nil {
			if p.required {
				return invalid(ReasonBadProperty, "properties."+p.name, "required by %q events", ev.Event)
			}
			continue
		}
		if err := d.checkValue(p, v, "properties", ReasonBadProperty); err != nil {
			return err
		}
	}
	return nil
}

// read returns the value of a property or trait readName knows, as the
// map holds it.
func (d *decoder) read(name string) (any, bool) {
	_, i := readName(name)
	return d.named[i], d.namedSet&(1<<i) != 0
}

// checkValue checks v, the value of a catalogued property or trait of
// the object at path. The field is only spelt out for an error.
func (d *decoder) checkValue(p *propertySpec, v any, path string, r Reason) error {
	switch p.kind {
	case kindString:
		s, isStr := v.(string)
		if !isStr {
			return invalid(r, path+"."+p.name, "must be %s", p.kind)
		}
		if len(s) > MaxPropertyLen {
			return invalid(ReasonFieldTooLong, path+"."+p.name, "longer than %d bytes", MaxPropertyLen)
		}
		if d.ctl {
			if i := controlAt(s); i >= 0 {
				return controlError(path+"."+p.name, i)
			}
		}
	case kindNumber:
		f, isNum := v.(float64)
		if !isNum || math.IsNaN(f) || math.IsInf(f, 0) {
			return invalid(r, path+"."+p.name, "must be %s", p.kind)
		}
		if f < p.min || f > p.max {
			return invalid(r, path+"."+p.name, "must be between %g and %g", p.min, p.max)
		}
	case kindBool:
		if _, isBool := v.(bool); !isBool {
			return invalid(r, path+"."+p.name, "must be %s", p.kind)
		}
	}
	return nil
}

// checkControl refuses a control character in v: C0 (U+0000–U+001F),
// DEL (U+007F) and C1 (U+0080–U+009F). They would end up in state keys,
// logs of other systems and email headers, where they split lines, hide
// text or end strings early. A record without backslashes, DEL or the
// lead byte of C1 has none (d.ctl is false): raw C0 bytes in a string are
// not JSON.
func (d *decoder) checkControl(field, v string) error {
	if !d.ctl {
		return nil
	}
	if i := controlAt(v); i >= 0 {
		return controlError(field, i)
	}
	return nil
}

// controlAt returns the offset of the first control character of v, or
// -1.
func controlAt(v string) int {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c == 0x7f || c == 0xc2 && i+1 < len(v) && v[i+1] >= 0x80 && v[i+1] <= 0x9f {
			return i
		}
	}
	return -1
}

func controlError(field string, i int) error {
	return invalid(ReasonControlChar, field, "holds a control character at byte %d of its value", i)
}

// traitSpecs are the identify traits microtrigger reads, in the order
// they are checked.
func traitSpecs() [6]propertySpec {
	return [...]propertySpec{
		{name: "email", kind: kindString},
		{name: "timezone", kind: kindString},
		{name: "email_opt_in", kind: kindBool},
		{name: "lifetime_value", kind: kindNumber, min: -MaxAmount, max: MaxAmount},
		{name: "first_name", kind: kindString},
		{name: "locale", kind: kindString},
	}
}

func (d *decoder) checkTraits(path string) error {
	if len(d.ev.Traits) == 0 {
		return nil
	}
	specs := traitSpecs()
	for i := range specs {
		spec := &specs[i]
		v, ok := d.read(spec.name)
		if !ok || v == nil {
			continue
		}
		if err := d.checkValue(spec, v, path, ReasonBadTrait); err != nil {
			return err
		}
		switch spec.name {
		case "email":
			if !plausibleEmail(v.(string)) {
				return invalid(ReasonBadTrait, path+"."+spec.name, "not an email address")
			}
		case "timezone":
			if err := CheckTimezone(v.(string)); err != nil {
				return invalid(ReasonBadTrait, path+"."+spec.name, "%v", err)
			}
		}
	}
	return nil
}

func plausibleEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && len(s) <= 254 && !strings.ContainsAny(s, " \t\r\n<>,;")
}

// CheckTimezone reports whether name is an IANA time zone a user may have:
// a zone of the database embedded in the binary (schema/zoneinfo), so that
// the answer is the same on every host. "" and "Local" are refused: they
// would make sends depend on the machine. The error never repeats name,
// which arrives in events.
func CheckTimezone(name string) error {
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
