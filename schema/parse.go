package schema

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// decoder reads an event in one pass over its bytes: it checks the JSON
// grammar, decodes the envelope straight into an Event and properties and
// traits into maps, and notes whatever the key check (checkKeys) could
// refuse, so that the exact refusal is only worked out for records that
// have one. It accepts and refuses what the decoder it replaced
// (segmentio/encoding into a struct, then checkKeys) did, with the same
// reasons, fields and messages; FuzzDecodeMatchesReference holds it to
// that.
//
// The strings of the event are copies: callers reuse their buffers (a
// line reader, Pebble's iterators) once DecodeEvent returns, and state
// keeps single strings of an event for long, so one allocation per event
// sliced by all its strings would keep every record's bytes alive.
type decoder struct {
	b []byte
	i int
	// fail says why the pass stopped: syntax (anywhere in the envelope,
	// the decoder it replaced re-checked the envelope before reporting a
	// type) or a field of the wrong type, te.
	fail failure
	te   typeError
	// suspect is set when checkKeys may refuse the record: duplicate
	// keys, keys equal under case folding or differing in case from a
	// field, lone surrogates, nesting over maxDepth, numbers out of range.
	suspect bool
	// ctl is set when a string of the record may hold a control
	// character: the record holds a backslash, DEL or 0xc2 (the lead byte
	// of C1 controls). plain is set when it holds no backslash: a string
	// then ends at the next quote.
	ctl, plain bool

	ev Event
	// named holds the values of the properties and traits of readName,
	// where namedSet has their bit.
	named    [numReadNames]any
	namedSet uint32
	times    [4]timeField // timestamp, originalTimestamp, sentAt, receivedAt
	// shared are the places of the strings shareStrings makes.
	shared [numShared]timeField
	// ptKey is the key of the property or trait being read, for the
	// field of a number beyond float64 in it.
	ptKey []byte

	// Keys of the open objects, innermost last, for the case-folding
	// check: in the array while they fit.
	keys  [32][]byte
	nkeys int
	spill [][]byte
	sets  []keySet // of large objects
	// Members of the open maps and elements of the open arrays, until
	// the map or slice is made with its final size.
	kvs      [16]kv
	nkvs     int
	kvSpill  []kv
	vals     [16]any
	nvals    int
	valSpill []any
	// scratch holds unescaped strings.
	scratch []byte
}

type failure uint8

const (
	failSyntax failure = iota + 1
	failType
)

// typeError is the first field of the wrong JSON type, as the decoder it
// replaced reported it: the field's dotted path, the kind the field has,
// the first byte of the value.
type typeError struct {
	field    string
	want     string
	got      byte
	overflow bool // a number beyond float64 in properties or traits
}

// kv is a member of a map being read: its key, and its value, or for a
// string b[start:end] (str), made when the map is.
type kv struct {
	k          []byte
	name       string // the key when readName knows it, at index idx
	v          any
	start, end int32
	idx        int8
	str, esc   bool
}

// timeField is where a string of the envelope is (its time strings,
// those of shareStrings): b[start:end], to be unescaped when esc.
type timeField struct {
	set        bool
	esc        bool
	start, end int
}

const (
	tsTimestamp = iota
	tsOriginal
	tsSentAt
	tsReceivedAt
)

func (d *decoder) syntax() {
	if d.fail == 0 {
		d.fail = failSyntax
	}
}

func (d *decoder) typeErr(field, want string, c byte) {
	if d.fail == 0 {
		d.fail = failType
		d.te = typeError{field: field, want: want, got: c}
	}
}

// ws skips JSON whitespace.
func (d *decoder) ws() {
	if d.i < len(d.b) && d.b[d.i] > ' ' {
		return // compact JSON, the common case
	}
	d.wsSlow()
}

func (d *decoder) wsSlow() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// member reads the key of the next member of an object whose '{' (first)
// or previous value was just read, and the colon after it. It returns the
// key's raw contents, whether they hold escapes, and false at the end of
// the object or on a syntax error.
func (d *decoder) member(first bool) (start, end int, esc, ok bool) {
	// Compact JSON without escapes, the common case: [,]"key": and a
	// value.
	if b, i := d.b, d.i; d.plain {
		if !first && i < len(b) && b[i] == ',' {
			i++
		}
		if (i > d.i || first) && i < len(b) && b[i] == '"' {
			if q := nextQuote(b, i+1); q+2 < len(b) && b[q] == '"' && b[q+1] == ':' && b[q+2] > ' ' {
				d.i = q + 2
				return i + 1, q, false, true
			}
		}
	}
	d.ws()
	if d.i >= len(d.b) {
		d.syntax()
		return 0, 0, false, false
	}
	c := d.b[d.i]
	if c == '}' {
		d.i++
		return 0, 0, false, false
	}
	if !first {
		if c != ',' {
			d.syntax()
			return 0, 0, false, false
		}
		d.i++
		d.ws()
		if d.i >= len(d.b) {
			d.syntax()
			return 0, 0, false, false
		}
	}
	if d.b[d.i] != '"' {
		d.syntax()
		return 0, 0, false, false
	}
	start, end, esc = d.str()
	if d.fail != 0 {
		return 0, 0, false, false
	}
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != ':' {
		d.syntax()
		return 0, 0, false, false
	}
	d.i++
	d.ws()
	if d.i >= len(d.b) {
		d.syntax()
		return 0, 0, false, false
	}
	return start, end, esc, true
}

// element readies the next element of an array whose '[' (first) or
// previous element was just read; false at its end or on a syntax error.
func (d *decoder) element(first bool) bool {
	d.ws()
	if d.i >= len(d.b) {
		d.syntax()
		return false
	}
	c := d.b[d.i]
	if c == ']' {
		d.i++
		return false
	}
	if !first {
		if c != ',' {
			d.syntax()
			return false
		}
		d.i++
		d.ws()
		if d.i >= len(d.b) {
			d.syntax()
			return false
		}
	}
	return true
}

// str reads the string at d.i and returns where its raw contents are and
// whether they hold escapes. A lone UTF-16 surrogate escape makes the
// record suspect.
func (d *decoder) str() (start, end int, esc bool) {
	if d.plain {
		i := nextQuote(d.b, d.i+1)
		if i >= len(d.b) || d.b[i] != '"' {
			d.syntax()
			return 0, 0, false
		}
		start, d.i = d.i+1, i+1
		return start, i, false
	}
	b := d.b
	i := d.i + 1
	start = i
	for {
		i = nextSpecial(b, i)
		if i >= len(b) {
			d.syntax()
			return 0, 0, false
		}
		switch c := b[i]; {
		case c == '"':
			d.i = i + 1
			return start, i, esc
		case c < 0x20:
			d.syntax()
			return 0, 0, false
		}
		// A backslash.
		esc = true
		if i+1 >= len(b) {
			d.syntax()
			return 0, 0, false
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
			continue
		case 'u':
		default:
			d.syntax()
			return 0, 0, false
		}
		r, ok := unhex4(b, i+2)
		if !ok {
			d.syntax()
			return 0, 0, false
		}
		i += 6
		if !utf16.IsSurrogate(r) {
			continue
		}
		// A pair takes the low half with it; anything else is left
		// to the loop, which checks its escape.
		if r < 0xdc00 && i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
			if lo, ok := unhex4(b, i+2); ok && utf16.DecodeRune(r, lo) != utf8.RuneError {
				i += 6
				continue
			}
		}
		d.suspect = true
	}
}

// SWAR (eight bytes in a word) tests: a zero byte in x sets the high bit
// of its lane in (x-ones)&^x, a byte under n in x that of (x-n*ones)&^x.
// Borrows only reach the lanes above one set, so the lowest lane set is
// exact, and so is whether any is.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// scanRecord reports whether b is plain (holds no backslash: a string
// ends at the next quote) and whether its strings may hold control
// characters (it holds a backslash, DEL or 0xc2, the lead byte of C1
// controls; raw C0 bytes in strings are not JSON).
func scanRecord(b []byte) (plain, ctl bool) {
	plain = bytes.IndexByte(b, '\\') < 0
	return plain, !plain || bytes.IndexByte(b, 0x7f) >= 0 || bytes.IndexByte(b, 0xc2) >= 0
}

// nextQuote returns the offset of the first quote or byte under 0x20 at
// or after i, or len(b).
func nextQuote(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		q := w ^ ('"' * ones)
		if m := ((q-ones)&^q | (w-0x20*ones)&^w) & highs; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(b) && b[i] != '"' && b[i] >= 0x20; i++ {
	}
	return i
}

// nextSpecial returns the offset of the first quote, backslash or byte
// under 0x20 at or after i, or len(b).
func nextSpecial(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		q := w ^ ('"' * ones)
		s := w ^ ('\\' * ones)
		if m := ((q-ones)&^q | (s-ones)&^s | (w-0x20*ones)&^w) & highs; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return i
}

func unhex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescape appends to dst the string the raw contents of a JSON string
// denote. Like the decoder it replaced, it turns a lone surrogate escape
// into U+FFFD (the record is refused for it anyway). raw has been checked
// by str.
func unescape(dst, raw []byte) []byte {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\\')
		if i < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:i]...)
		if i+1 >= len(raw) {
			return dst
		}
		c := raw[i+1]
		raw = raw[i+2:]
		switch c {
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'u':
			r, ok := unhex4(raw, 0)
			if !ok {
				return dst
			}
			raw = raw[4:]
			if utf16.IsSurrogate(r) {
				r1 := utf8.RuneError
				if len(raw) >= 6 && raw[0] == '\\' && raw[1] == 'u' {
					lo, _ := unhex4(raw, 2)
					if r1 = utf16.DecodeRune(r, lo); r1 != utf8.RuneError {
						raw = raw[6:]
					}
				}
				r = r1
			}
			dst = utf8.AppendRune(dst, r)
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// text returns the string a JSON string's raw contents b[start:end]
// denote, as a copy.
func (d *decoder) text(start, end int, esc bool) string {
	if !esc {
		return string(d.b[start:end])
	}
	n := len(d.scratch)
	d.scratch = unescape(d.scratch, d.b[start:end])
	return string(d.scratch[n:])
}

// keyBytes returns the key b[start:end] denotes, unescaped into scratch
// when it holds escapes. The slice stays valid: scratch only grows.
func (d *decoder) keyBytes(start, end int, esc bool) []byte {
	if !esc {
		return d.b[start:end]
	}
	n := len(d.scratch)
	d.scratch = unescape(d.scratch, d.b[start:end])
	return d.scratch[n:len(d.scratch):len(d.scratch)]
}

// literal reads true, false or null at d.i.
func (d *decoder) literal(lit string) {
	if len(d.b)-d.i < len(lit) || string(d.b[d.i:d.i+len(lit)]) != lit {
		d.syntax()
		return
	}
	d.i += len(lit)
}

// isNull reports whether null is at d.i, and reads it.
func (d *decoder) isNull() bool {
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// number reads the number at d.i and returns its text.
func (d *decoder) number() []byte {
	b, i := d.b, d.i
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		d.syntax()
		return nil
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		for i++; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
	default:
		d.syntax()
		return nil
	}
	if i < len(b) && b[i] == '.' {
		i++
		j := i
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
		if i == j {
			d.syntax()
			return nil
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
		if i == j {
			d.syntax()
			return nil
		}
	}
	d.i = i
	return b[start:i]
}

// float returns the float64 the JSON number n denotes, and false beyond
// the range of a float64.
func float(n []byte) (float64, bool) {
	// Integers of up to 15 digits are exact in a float64: the common case
	// needs no strconv.
	neg := n[0] == '-'
	digits := n
	if neg {
		digits = n[1:]
	}
	if len(digits) <= 15 {
		var v int64
		for _, c := range digits {
			if c < '0' || c > '9' {
				goto general
			}
			v = v*10 + int64(c-'0')
		}
		if neg {
			return -float64(v), true
		}
		return float64(v), true
	}
general:
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(n), len(n)), 64)
	return f, err == nil
}

// pushKey adds k to the keys of the innermost open object, those from
// base, after comparing it with the others under case folding: one by one
// in small objects, by their fold hashes in large ones, so that a record
// of thousands of keys costs no more than a few.
func (d *decoder) pushKey(base int, k []byte) {
	if !d.suspect {
		if n := d.nkeys - base; n < bigObject {
			for i := base; i < d.nkeys; i++ {
				if foldEqual(d.key(i), k) {
					d.suspect = true
					break
				}
			}
		} else if set := d.foldSet(base); set != nil {
			h := foldHash(k)
			if _, dup := set[h]; dup {
				// Equal under folding, or a collision: checkKeys
				// tells which.
				d.suspect = true
			}
			set[h] = struct{}{}
		}
	}
	if d.nkeys < len(d.keys) {
		d.keys[d.nkeys] = k
	} else {
		d.spill = append(d.spill[:d.nkeys-len(d.keys)], k)
	}
	d.nkeys++
}

// bigObject is the number of keys from which an object's keys are
// compared by hash.
const bigObject = 16

// foldSet returns the fold hashes of the keys of the open object whose
// keys start at base, made on first use. An object is told from an
// earlier one at the same base by where its first key is.
func (d *decoder) foldSet(base int) map[uint64]struct{} {
	first := unsafe.SliceData(d.key(base))
	for i := range d.sets {
		if s := &d.sets[i]; s.base == base {
			if s.first != first {
				s.first, s.m = first, d.hashKeys(base)
			}
			return s.m
		}
	}
	d.sets = append(d.sets, keySet{base, first, d.hashKeys(base)})
	return d.sets[len(d.sets)-1].m
}

func (d *decoder) hashKeys(base int) map[uint64]struct{} {
	m := make(map[uint64]struct{}, 2*(d.nkeys-base))
	for i := base; i < d.nkeys; i++ {
		m[foldHash(d.key(i))] = struct{}{}
	}
	return m
}

// keySet holds the fold hashes of a large object's keys.
type keySet struct {
	base  int
	first *byte
	m     map[uint64]struct{}
}

func (d *decoder) key(i int) []byte {
	if i < len(d.keys) {
		return d.keys[i]
	}
	return d.spill[i-len(d.keys)]
}

// foldEqual reports bytes.EqualFold(a, b), quickly for ASCII keys of
// different lengths or first letters.
func foldEqual(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	if a[0] < utf8.RuneSelf && b[0] < utf8.RuneSelf && a[0]|0x20 != b[0]|0x20 {
		return false
	}
	return bytes.EqualFold(a, b)
}

// foldsToName reports whether k, not itself a name the decoder reads from
// an object of kind kind, equals one under case folding. For properties
// it takes the names of every catalogued event: the event may only be
// known after them.
func foldsToName(kind objKind, k []byte) bool {
	if kind == objOther {
		return false
	}
	// Only upper-case ASCII and a few non-ASCII runes fold onto the
	// lower-case names of properties and traits.
	if kind == objProperties || kind == objTraits {
		plain := true
		for _, c := range k {
			if 'A' <= c && c <= 'Z' || c >= utf8.RuneSelf {
				plain = false
				break
			}
		}
		if plain {
			return false
		}
	}
	if kind != objProperties {
		return nameOf(kind, k, nil) != ""
	}
	var buf [64]byte
	if len(k) > len(buf) {
		return false
	}
	low, ok := asciiFold(buf[:0], k)
	if !ok {
		return false
	}
	switch string(low) {
	case "path", "product_id", "name", "category", "price", "quantity", "order_id", "value",
		"revenue", "total", "percent", "element", "seconds", "form", "position":
		return true
	}
	return false
}

// The envelope and context strings that state does not keep one by one,
// or keeps once per user (the user's key and zone): they share one
// allocation, made once the record is read. Page paths and event names,
// which state keeps as keys of many events, have their own.
const (
	shMessageID = iota
	shUserID
	shAnonymousID
	shTimezone
	shName
	shURL
	shTitle
	shReferrer
	shUserAgent
	shLocale
	shDeviceType
	numShared
)

// shareStrings makes the strings of d.shared, in one allocation.
func (d *decoder) shareStrings() {
	n, count := 0, 0
	for i := range d.shared {
		if f := &d.shared[i]; f.set {
			n += f.end - f.start
			count++
		}
	}
	if count == 0 {
		return
	}
	buf := make([]byte, 0, n)
	for i := range d.shared {
		f := &d.shared[i]
		if !f.set {
			continue
		}
		var v string
		buf, v = appendString(buf, d.b[f.start:f.end], f.esc)
		c := &d.ev.Context
		switch i {
		case shMessageID:
			d.ev.MessageID = v
		case shUserID:
			d.ev.UserID = v
		case shAnonymousID:
			d.ev.AnonymousID = v
		case shTimezone:
			c.Timezone = v
		case shName:
			d.ev.Name = v
		case shURL:
			c.Page.URL = v
		case shTitle:
			c.Page.Title = v
		case shReferrer:
			c.Page.Referrer = v
		case shUserAgent:
			c.UserAgent = v
		case shLocale:
			c.Locale = v
		case shDeviceType:
			c.Device.Type = v
		}
	}
}

// sharedField reads a string field of d.shared: its place, until
// shareStrings makes it.
func (d *decoder) sharedField(id int, field string) {
	switch c := d.b[d.i]; {
	case c == '"':
		s, e, esc := d.str()
		if d.fail == 0 {
			d.shared[id] = timeField{set: true, esc: esc, start: s, end: e}
		}
	case d.isNull():
		// The decoder replaced left a field null does not set alone.
	default:
		d.typeErr(field, "a string", c)
	}
}

// Bits of the envelope and context fields read, for duplicates.
const (
	fMessageID = 1 << iota
	fType
	fEvent
	fName
	fUserID
	fAnonymousID
	fTimestamp
	fOriginal
	fSentAt
	fReceivedAt
	fProperties
	fTraits
	fContext
)

// envelope reads the event object at d.i.
func (d *decoder) envelope() {
	d.i++ // {
	var seen uint32
	base := d.nkeys
	for first := true; ; first = false {
		ks, ke, esc, ok := d.member(first)
		if !ok {
			return
		}
		k := d.keyBytes(ks, ke, esc)
		var bit uint32
		switch string(k) {
		case "messageId":
			bit = fMessageID
			d.sharedField(shMessageID, "messageId")
		case "type":
			bit = fType
			d.typeField()
		case "event":
			bit = fEvent
			d.eventField()
		case "name":
			bit = fName
			d.sharedField(shName, "name")
		case "userId":
			bit = fUserID
			d.sharedField(shUserID, "userId")
		case "anonymousId":
			bit = fAnonymousID
			d.sharedField(shAnonymousID, "anonymousId")
		case "timestamp":
			bit = fTimestamp
			d.timeField(tsTimestamp, "timestamp")
		case "originalTimestamp":
			bit = fOriginal
			d.timeField(tsOriginal, "originalTimestamp")
		case "sentAt":
			bit = fSentAt
			d.timeField(tsSentAt, "sentAt")
		case "receivedAt":
			bit = fReceivedAt
			d.timeField(tsReceivedAt, "receivedAt")
		case "properties":
			bit = fProperties
			d.ev.Properties = d.ptField(objProperties, "properties", d.ev.Properties)
		case "traits":
			bit = fTraits
			d.ev.Traits = d.ptField(objTraits, "traits", d.ev.Traits)
		case "context":
			bit = fContext
			switch c := d.b[d.i]; {
			case c == '{':
				d.context()
			case d.isNull():
				// The decoder it replaced dropped what an earlier
				// context set; a record with two is refused anyway.
				d.ev.Context = Context{}
				for _, i := range [...]int{shTimezone, shURL, shTitle, shReferrer, shUserAgent, shLocale, shDeviceType} {
					d.shared[i] = timeField{}
				}
			default:
				d.typeErr("context", "an object", c)
			}
		default:
			if !d.suspect && foldsToName(objEnvelope, k) {
				d.suspect = true
			}
			d.pushKey(base, k)
			d.skip(1)
		}
		if seen&bit != 0 {
			d.suspect = true
		}
		seen |= bit
		if d.fail != 0 {
			return
		}
	}
}

// stringField reads a string field of the envelope or the context.
func (d *decoder) stringField(dst *string, field string) {
	switch c := d.b[d.i]; {
	case c == '"':
		s, e, esc := d.str()
		if d.fail == 0 {
			*dst = d.text(s, e, esc)
		}
	case d.isNull():
	default:
		d.typeErr(field, "a string", c)
	}
}

// typeField reads the call type, as a constant when it is a known one.
func (d *decoder) typeField() {
	if d.b[d.i] != '"' {
		d.stringField(&d.ev.Type, "type")
		return
	}
	s, e, esc := d.str()
	if d.fail != 0 {
		return
	}
	switch v := d.b[s:e]; {
	case esc:
		d.ev.Type = d.text(s, e, esc)
	case string(v) == TypeTrack:
		d.ev.Type = TypeTrack
	case string(v) == TypePage:
		d.ev.Type = TypePage
	case string(v) == TypeIdentify:
		d.ev.Type = TypeIdentify
	case string(v) == TypeScreen:
		d.ev.Type = TypeScreen
	case string(v) == TypeDelete:
		d.ev.Type = TypeDelete
	default:
		d.ev.Type = string(v)
	}
}

// eventField reads the track event's name, as a constant when the
// catalogue knows it.
func (d *decoder) eventField() {
	if d.b[d.i] != '"' {
		d.stringField(&d.ev.Event, "event")
		return
	}
	s, e, esc := d.str()
	if d.fail != 0 {
		return
	}
	if !esc {
		if name, ok := catalogued(d.b[s:e]); ok {
			d.ev.Event = name
			return
		}
	}
	d.ev.Event = d.text(s, e, esc)
}

// timeField notes where a time string is; it is parsed once the record
// has passed the key check.
func (d *decoder) timeField(which int, field string) {
	switch c := d.b[d.i]; {
	case c == '"':
		s, e, esc := d.str()
		if d.fail == 0 {
			d.times[which] = timeField{set: true, esc: esc, start: s, end: e}
		}
	case d.isNull():
		d.times[which] = timeField{}
	default:
		d.typeErr(field, "a string", c)
	}
}

// ptField reads properties or traits (kind) into a map; an empty one is
// nil, as is null.
func (d *decoder) ptField(kind objKind, field string, m map[string]any) map[string]any {
	switch c := d.b[d.i]; {
	case c == '{':
		got := d.object(2, kind, field)
		if len(m) != 0 {
			// A second properties: the decoder it replaced merged
			// them. The record is refused as a duplicate anyway.
			for k, v := range got {
				m[k] = v
			}
			return m
		}
		if len(got) == 0 {
			return nil
		}
		return got
	case d.isNull():
		return nil
	default:
		d.typeErr(field, "an object", c)
		return m
	}
}

// context reads the context object at d.i.
func (d *decoder) context() {
	d.i++ // {
	var seen uint32
	base := d.nkeys
	for first := true; ; first = false {
		ks, ke, esc, ok := d.member(first)
		if !ok {
			return
		}
		k := d.keyBytes(ks, ke, esc)
		var bit uint32
		switch string(k) {
		case "page":
			bit = 1
			switch v := d.b[d.i]; {
			case v == '{':
				d.page()
			case d.isNull():
			default:
				d.typeErr("context.page", "an object", v)
			}
		case "userAgent":
			bit = 2
			d.sharedField(shUserAgent, "context.userAgent")
		case "timezone":
			bit = 4
			d.sharedField(shTimezone, "context.timezone")
		case "locale":
			bit = 8
			d.sharedField(shLocale, "context.locale")
		case "device":
			bit = 16
			switch v := d.b[d.i]; {
			case v == '{':
				d.device()
			case d.isNull():
			default:
				d.typeErr("context.device", "an object", v)
			}
		case "campaign":
			bit = 32
			switch v := d.b[d.i]; {
			case v == '{':
				d.campaign()
			case d.isNull():
			default:
				d.typeErr("context.campaign", "an object", v)
			}
		default:
			if !d.suspect && foldsToName(objContext, k) {
				d.suspect = true
			}
			d.pushKey(base, k)
			d.skip(2)
		}
		if seen&bit != 0 {
			d.suspect = true
		}
		seen |= bit
		if d.fail != 0 {
			return
		}
	}
}

// page reads context.page at d.i.
func (d *decoder) page() {
	d.i++ // {
	var seen uint32
	base := d.nkeys
	p := &d.ev.Context.Page
	for first := true; ; first = false {
		ks, ke, esc, ok := d.member(first)
		if !ok {
			return
		}
		k := d.keyBytes(ks, ke, esc)
		var bit uint32
		switch string(k) {
		case "path":
			bit = 1
			d.stringField(&p.Path, "context.page.path")
		case "url":
			bit = 2
			d.sharedField(shURL, "context.page.url")
		case "title":
			bit = 4
			d.sharedField(shTitle, "context.page.title")
		case "referrer":
			bit = 8
			d.sharedField(shReferrer, "context.page.referrer")
		default:
			if !d.suspect && foldsToName(objPage, k) {
				d.suspect = true
			}
			d.pushKey(base, k)
			d.skip(3)
		}
		if seen&bit != 0 {
			d.suspect = true
		}
		seen |= bit
		if d.fail != 0 {
			return
		}
	}
}

// device reads context.device at d.i.
func (d *decoder) device() {
	d.i++ // {
	seen := false
	base := d.nkeys
	for first := true; ; first = false {
		ks, ke, esc, ok := d.member(first)
		if !ok {
			return
		}
		k := d.keyBytes(ks, ke, esc)
		if string(k) == "type" {
			if seen {
				d.suspect = true
			}
			seen = true
			d.sharedField(shDeviceType, "context.device.type")
		} else {
			if !d.suspect && foldsToName(objDevice, k) {
				d.suspect = true
			}
			d.pushKey(base, k)
			d.skip(3)
		}
		if d.fail != 0 {
			return
		}
	}
}

// campaign reads context.campaign at d.i.
func (d *decoder) campaign() {
	d.i++ // {
	var seen uint32
	base := d.nkeys
	c := &d.ev.Context.Campaign
	for first := true; ; first = false {
		ks, ke, esc, ok := d.member(first)
		if !ok {
			return
		}
		k := d.keyBytes(ks, ke, esc)
		var bit uint32
		switch string(k) {
		case "name":
			bit = 1
			d.stringField(&c.Name, "context.campaign.name")
		case "source":
			bit = 2
			d.stringField(&c.Source, "context.campaign.source")
		case "medium":
			bit = 4
			d.stringField(&c.Medium, "context.campaign.medium")
		case "term":
			bit = 8
			d.stringField(&c.Term, "context.campaign.term")
		case "content":
			bit = 16
			d.stringField(&c.Content, "context.campaign.content")
		default:
			if !d.suspect && foldsToName(objCampaign, k) {
				d.suspect = true
			}
			d.pushKey(base, k)
			d.skip(3)
		}
		if seen&bit != 0 {
			d.suspect = true
		}
		seen |= bit
		if d.fail != 0 {
			return
		}
	}
}

// object reads the object at d.i, at nesting depth depth, into a map.
// kind is objProperties or objTraits for properties and traits
// themselves, whose field is top, objOther for objects in them.
func (d *decoder) object(depth int, kind objKind, top string) map[string]any {
	d.i++ // {
	base, kvBase := d.nkeys, d.nkvs
	for first := true; ; first = false {
		ks, ke, esc, ok := d.member(first)
		if !ok {
			break
		}
		k := d.keyBytes(ks, ke, esc)
		if !d.suspect && kind != objOther && foldsToName(kind, k) {
			d.suspect = true
		}
		d.pushKey(base, k)
		if kind != objOther {
			d.ptKey = k
		}
		e := kv{k: k}
		name, idx := readName(unsafe.String(unsafe.SliceData(k), len(k)))
		e.name, e.idx = name, int8(idx)
		if d.b[d.i] == '"' {
			s, end, esc := d.str()
			e.start, e.end, e.str, e.esc = int32(s), int32(end), true, esc
		} else {
			e.v = d.value(depth, top)
		}
		if d.fail != 0 {
			break
		}
		d.pushKV(e)
	}
	d.nkeys = base
	if d.fail != 0 {
		d.nkvs = kvBase
		return nil
	}
	// The keys and string values of the map share one allocation: they
	// live as long as the map, state that keeps one of them alone keeps
	// a few bytes more.
	n := 0
	for i := kvBase; i < d.nkvs; i++ {
		e := d.kv(i)
		if e.idx < 0 {
			n += len(e.k)
		}
		if e.str {
			n += int(e.end - e.start)
		}
	}
	buf := make([]byte, 0, n)
	m := make(map[string]any, d.nkvs-kvBase)
	for i := kvBase; i < d.nkvs; i++ {
		e := d.kv(i)
		name, idx := e.name, int(e.idx)
		if idx < 0 {
			buf, name = appendString(buf, e.k, false)
		}
		v := e.v
		if e.str {
			var sv string
			buf, sv = appendString(buf, d.b[e.start:e.end], e.esc)
			v = sv
		}
		m[name] = v
		// The values the checks read, without looking them up in the
		// map: properties.path and catalogued properties, traits.
		if kind == objProperties && 0 <= idx && idx < numPropertyNames ||
			kind == objTraits && idx >= numPropertyNames {
			d.named[idx] = v
			d.namedSet |= 1 << idx
		}
	}
	d.nkvs = kvBase
	return m
}

// appendString appends raw (unescaped when esc) to buf, which has room for
// it, and returns the string it makes there. buf is never grown past its
// capacity nor written twice, so the strings may share it.
func appendString(buf, raw []byte, esc bool) ([]byte, string) {
	off := len(buf)
	if esc {
		buf = unescape(buf, raw)
	} else {
		buf = append(buf, raw...)
	}
	if len(buf) == off {
		return buf, ""
	}
	return buf, unsafe.String(&buf[off], len(buf)-off)
}

func (d *decoder) pushKV(e kv) {
	if d.nkvs < len(d.kvs) {
		d.kvs[d.nkvs] = e
	} else {
		d.kvSpill = append(d.kvSpill[:d.nkvs-len(d.kvs)], e)
	}
	d.nkvs++
}

func (d *decoder) kv(i int) *kv {
	if i < len(d.kvs) {
		return &d.kvs[i]
	}
	return &d.kvSpill[i-len(d.kvs)]
}

// array reads the array at d.i, at nesting depth depth, into a slice.
func (d *decoder) array(depth int, top string) []any {
	d.i++ // [
	base := d.nvals
	for first := true; d.element(first); first = false {
		v := d.value(depth, top)
		if d.fail != 0 {
			break
		}
		if d.nvals < len(d.vals) {
			d.vals[d.nvals] = v
		} else {
			d.valSpill = append(d.valSpill[:d.nvals-len(d.vals)], v)
		}
		d.nvals++
	}
	if d.fail != 0 {
		d.nvals = base
		return nil
	}
	a := make([]any, d.nvals-base)
	for i := range a {
		if j := base + i; j < len(d.vals) {
			a[i] = d.vals[j]
		} else {
			a[i] = d.valSpill[j-len(d.vals)]
		}
	}
	d.nvals = base
	return a
}

// value reads a value in properties or traits (top) at d.i, inside a
// container at depth depth.
func (d *decoder) value(depth int, top string) any {
	switch c := d.b[d.i]; c {
	case '{', '[':
		if depth+1 > maxDepth {
			d.suspect = true
			d.deepSkip(top)
			return nil
		}
		if c == '{' {
			return d.object(depth+1, objOther, top)
		}
		return d.array(depth+1, top)
	case '"':
		s, e, esc := d.str()
		if d.fail != 0 {
			return nil
		}
		return d.text(s, e, esc)
	case 't':
		d.literal("true")
		return true
	case 'f':
		d.literal("false")
		return false
	case 'n':
		d.literal("null")
		return nil
	}
	n := d.number()
	if d.fail != 0 {
		return nil
	}
	return d.ptNumber(n, top)
}

// ptNumber converts a number of properties or traits (top): one beyond
// float64 is a type error, as it was for the decoder replaced; one over
// MaxNumber the key check refuses.
func (d *decoder) ptNumber(n []byte, top string) any {
	f, ok := float(n)
	if !ok {
		d.typeErr(top+"."+string(d.ptKey), "a number", n[0])
		d.te.overflow = true
		return nil
	}
	if math.Abs(f) > MaxNumber {
		d.suspect = true
	}
	return f
}

// skip reads a value the decoder does not read, inside a container at
// depth depth, for the grammar and the key check only.
func (d *decoder) skip(depth int) {
	switch c := d.b[d.i]; c {
	case '{':
		if depth+1 > maxDepth {
			d.suspect = true
			d.deepSkip("")
			return
		}
		d.i++
		base := d.nkeys
		for first := true; ; first = false {
			ks, ke, esc, ok := d.member(first)
			if !ok {
				break
			}
			d.pushKey(base, d.keyBytes(ks, ke, esc))
			d.skip(depth + 1)
			if d.fail != 0 {
				break
			}
		}
		d.nkeys = base
	case '[':
		if depth+1 > maxDepth {
			d.suspect = true
			d.deepSkip("")
			return
		}
		d.i++
		for first := true; d.element(first); first = false {
			d.skip(depth + 1)
			if d.fail != 0 {
				return
			}
		}
	case '"':
		d.str()
	case 't':
		d.literal("true")
	case 'f':
		d.literal("false")
	case 'n':
		d.literal("null")
	default:
		n := d.number()
		if d.fail == 0 && !d.suspect && numberOver(n, math.MaxFloat64) {
			d.suspect = true
		}
	}
}

// deepSkip reads the value at d.i for its grammar only, however deep it
// nests, without recursion. In properties or traits (top set), a number
// beyond float64 is still a type error.
func (d *decoder) deepSkip(top string) {
	var buf [64]byte
	stack := buf[:0] // the open containers' opening bytes
	for d.fail == 0 {
		// A value.
		d.ws()
		if d.i >= len(d.b) {
			d.syntax()
			return
		}
		switch c := d.b[d.i]; c {
		case '{', '[':
			d.i++
			stack = append(stack, c)
			d.ws()
			if d.i < len(d.b) && d.b[d.i] == c+2 { // } or ]
				d.i++
				stack = stack[:len(stack)-1]
				break
			}
			if c == '{' && !d.skipKey() {
				return
			}
			continue
		case '"':
			d.str()
		case 't':
			d.literal("true")
		case 'f':
			d.literal("false")
		case 'n':
			d.literal("null")
		default:
			n := d.number()
			if d.fail == 0 && top != "" {
				if _, ok := float(n); !ok {
					d.typeErr(top+"."+string(d.ptKey), "a number", n[0])
					d.te.overflow = true
				}
			}
		}
		// After a value: close containers, or go on to the next member
		// or element.
		for d.fail == 0 {
			if len(stack) == 0 {
				return
			}
			d.ws()
			if d.i >= len(d.b) {
				d.syntax()
				return
			}
			open := stack[len(stack)-1]
			c := d.b[d.i]
			if c == open+2 {
				d.i++
				stack = stack[:len(stack)-1]
				continue
			}
			if c != ',' {
				d.syntax()
				return
			}
			d.i++
			if open == '{' && !d.skipKey() {
				return
			}
			break
		}
	}
}

// skipKey reads an object key and its colon for deepSkip.
func (d *decoder) skipKey() bool {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		d.syntax()
		return false
	}
	d.str()
	d.ws()
	if d.fail != 0 || d.i >= len(d.b) || d.b[d.i] != ':' {
		d.syntax()
		return false
	}
	d.i++
	return true
}

// validJSON reports whether b is one JSON value and whitespace, without
// limit on nesting.
func validJSON(b []byte) bool {
	d := decoder{b: b}
	d.ws()
	d.deepSkip("")
	d.ws()
	return d.fail == 0 && d.i == len(b)
}

// Indexes of readName: properties.path and the catalogued properties
// come first, the traits checkTraits reads after them.
const (
	numPropertyNames = 15
	numReadNames     = 21
)

// readName returns the names DecodeEvent reads from properties and traits
// as constants, with an index of their own, or -1: a map's keys of these
// names need no allocation.
func readName(k string) (string, int) {
	switch k {
	case "path":
		return "path", 0
	case "product_id":
		return "product_id", 1
	case "name":
		return "name", 2
	case "category":
		return "category", 3
	case "price":
		return "price", 4
	case "quantity":
		return "quantity", 5
	case "order_id":
		return "order_id", 6
	case "value":
		return "value", 7
	case "revenue":
		return "revenue", 8
	case "total":
		return "total", 9
	case "percent":
		return "percent", 10
	case "element":
		return "element", 11
	case "seconds":
		return "seconds", 12
	case "form":
		return "form", 13
	case "position":
		return "position", 14
	case "email":
		return "email", 15
	case "timezone":
		return "timezone", 16
	case "email_opt_in":
		return "email_opt_in", 17
	case "lifetime_value":
		return "lifetime_value", 18
	case "first_name":
		return "first_name", 19
	case "locale":
		return "locale", 20
	}
	return "", -1
}

// catalogued returns the name of a catalogued event as a constant.
func catalogued(name []byte) (string, bool) {
	switch string(name) {
	case "Product Viewed":
		return "Product Viewed", true
	case "Product Added":
		return "Product Added", true
	case "Product Removed":
		return "Product Removed", true
	case "Product Added to Wishlist":
		return "Product Added to Wishlist", true
	case "Checkout Started":
		return "Checkout Started", true
	case "Order Completed":
		return "Order Completed", true
	case "Cart Viewed":
		return "Cart Viewed", true
	case "Page Scrolled":
		return "Page Scrolled", true
	case "Element Hovered":
		return "Element Hovered", true
	case "Element Clicked":
		return "Element Clicked", true
	case "Page Heartbeat":
		return "Page Heartbeat", true
	case "Form Started":
		return "Form Started", true
	case "Form Submitted":
		return "Form Submitted", true
	case "Video Content Playing":
		return "Video Content Playing", true
	}
	return "", false
}
