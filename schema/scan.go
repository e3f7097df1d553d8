package schema

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

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
// It runs on input the decoder has already accepted as JSON, and only
// when the decoder's pass noticed something it may refuse (so its first
// finding, in the order of the record, is the refusal); it only walks the
// structure, and still never indexes past the input. Its messages give
// byte offsets, never a key or a value.
type keyCheck struct {
	b     []byte
	i     int
	depth int
	err   *ValidationError
	// Keys of all open objects, innermost last, as offsets into b with
	// their fold hashes: in the array while they fit, so that a typical
	// event allocates nothing.
	keys  [64]key
	nkeys int
	spill []key
	// The key of each open object member and the kind of its object, for
	// field paths.
	path  [maxDepth + 1]member
	npath int
	// props are the catalogued properties of the event, read by name.
	props []propertySpec
	// numReason, inside properties or traits, is the reason of a number
	// out of range there.
	numReason Reason
}

type span struct{ start, end int32 }

// key is an object key and the hash of its case-folded form.
type key struct {
	span
	fold uint64
}

// member is an object key and the kind of the object holding it.
type member struct {
	span
	in objKind
}

// objKind says which fields the decoder reads from an object.
type objKind uint8

const (
	objOther objKind = iota
	objEnvelope
	objContext
	objPage
	objDevice
	objCampaign
	objProperties
	objTraits
)

const maxDepth = 32

// checkKeys checks b; props are the catalogued properties of its event.
func checkKeys(b []byte, props []propertySpec) *ValidationError {
	s := keyCheck{b: b, props: props}
	s.ws()
	s.value(objEnvelope)
	return s.err
}

func (s *keyCheck) key(i int) key {
	if i < len(s.keys) {
		return s.keys[i]
	}
	return s.spill[i-len(s.keys)]
}

func (s *keyCheck) pushKey(k key) {
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
func (s *keyCheck) field() string {
	var b strings.Builder
	for _, m := range s.path[:s.npath] {
		k := unescapeKey(s.b[m.start:m.end])
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

func (s *keyCheck) fail(r Reason, format string, args ...any) {
	if s.err == nil {
		s.err = invalid(r, s.field(), format, args...)
	}
}

func (s *keyCheck) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *keyCheck) value(kind objKind) {
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
func (s *keyCheck) checkNumber(start int) {
	if start >= s.i {
		return
	}
	if c := s.b[start]; c != '-' && (c < '0' || c > '9') {
		return // true, false, null
	}
	limit, r := math.MaxFloat64, ReasonBadFieldType
	if s.numReason != "" {
		limit, r = MaxNumber, s.numReason
	}
	if numberOver(s.b[start:s.i], limit) {
		if r == ReasonBadFieldType {
			s.fail(r, "the number at byte %d is beyond the range of a 64-bit float", start)
			return
		}
		s.fail(r, "the number at byte %d is over %g in magnitude", start, MaxNumber)
	}
}

// numberOver reports whether the JSON number n is over limit (at least
// 1e15) in magnitude; one that does not parse (it overflows a float64) is.
func numberOver(n []byte, limit float64) bool {
	i := 0
	if i < len(n) && n[i] == '-' {
		i++
	}
	digits := 0
	for i < len(n) && n[i] >= '0' && n[i] <= '9' {
		i++
		digits++
	}
	if digits <= 15 { // under 1e15 unless an exponent follows
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
func (s *keyCheck) str() span {
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
			return span{int32(start), int32(j + q)}
		}
		p := j + bs // an escape
		if p+1 >= len(s.b) {
			break
		}
		if s.b[p+1] != 'u' {
			j = p + 2
			continue
		}
		r, ok := hex4(s.b, p+2)
		if !ok {
			break
		}
		j = p + 6
		if utf16.IsSurrogate(r) {
			lo, ok2 := rune(0), false
			if r < 0xdc00 && j+1 < len(s.b) && s.b[j] == '\\' && s.b[j+1] == 'u' {
				lo, ok2 = hex4(s.b, j+2)
			}
			if !ok2 || utf16.DecodeRune(r, lo) == 0xfffd {
				s.fail(ReasonInvalidUTF8, "lone UTF-16 surrogate in \\u escape at byte %d", p)
				return span{}
			}
			j += 6
		}
	}
	s.fail(ReasonNotJSON, "unterminated string at byte %d", start-1)
	return span{}
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(v), true
}

func (s *keyCheck) enter() bool {
	s.depth++
	if s.depth > maxDepth {
		s.fail(ReasonNotJSON, "nested deeper than %d levels at byte %d", maxDepth, s.i)
		return false
	}
	return true
}

func (s *keyCheck) object(kind objKind) {
	if !s.enter() {
		return
	}
	defer func() { s.depth-- }()
	s.i++ // {
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
		k := unescapeKey(s.b[sp.start:sp.end])
		// A key that folds to a field the decoder reads must be that
		// field's exact name.
		name := s.name(kind, k)
		if name != "" && name != string(k) {
			f := s.field()
			if f != "" {
				f += "."
			}
			s.err = invalid(ReasonAmbiguousKey, f+name, "the key at byte %d differs only in case from %s", at, name)
			return
		}
		s.path[s.npath] = member{sp, kind}
		s.npath++
		fold := foldHash(k)
		for i := base; i < s.nkeys; i++ {
			prev := s.key(i)
			if prev.fold != fold {
				continue
			}
			pk := unescapeKey(s.b[prev.start:prev.end])
			if bytes.Equal(pk, k) {
				s.fail(ReasonDuplicateKey, "the key at byte %d appears more than once in its object", at)
				return
			}
			if bytes.EqualFold(pk, k) {
				s.fail(ReasonAmbiguousKey, "the keys at bytes %d and %d are equal under case folding", prev.start-1, at)
				return
			}
		}
		s.pushKey(key{sp, fold})
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ':' {
			s.i++
		}
		s.ws()
		outer := s.numReason
		if kind == objEnvelope {
			switch name {
			case "properties":
				s.numReason = ReasonBadProperty
			case "traits":
				s.numReason = ReasonBadTrait
			}
		}
		s.value(childKind(kind, name))
		s.numReason = outer
		if s.err != nil {
			return
		}
		s.npath--
	}
}

func (s *keyCheck) array() {
	if !s.enter() {
		return
	}
	defer func() { s.depth-- }()
	s.i++ // [
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
		s.value(objOther)
	}
}

// childKind is the kind of the object that is the value of field name in
// an object of kind parent.
func childKind(parent objKind, name string) objKind {
	switch {
	case parent == objEnvelope && name == "context":
		return objContext
	case parent == objEnvelope && name == "properties":
		return objProperties
	case parent == objEnvelope && name == "traits":
		return objTraits
	case parent == objContext && name == "page":
		return objPage
	case parent == objContext && name == "device":
		return objDevice
	case parent == objContext && name == "campaign":
		return objCampaign
	}
	return objOther
}

// name returns the field the decoder reads from an object of kind kind
// that k equals under case folding, or "". All those names are ASCII.
func (s *keyCheck) name(kind objKind, k []byte) string {
	return nameOf(kind, k, s.props)
}

// nameOf is keyCheck.name with the catalogued properties props.
func nameOf(kind objKind, k []byte, props []propertySpec) string {
	if kind == objOther || len(k) > 64 {
		return ""
	}
	var buf [64]byte
	low, ok := asciiFold(buf[:0], k)
	if !ok {
		return ""
	}
	switch kind {
	case objEnvelope:
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
	case objContext:
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
	case objPage:
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
	case objDevice:
		if string(low) == "type" {
			return "type"
		}
	case objCampaign:
		switch string(low) {
		case "name", "source", "medium", "term", "content":
			return string(low)
		}
	case objTraits:
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
	case objProperties:
		// Event.Path reads properties.path of every call.
		if string(low) == "path" {
			return "path"
		}
		for i := range props {
			if string(low) == props[i].name {
				return props[i].name
			}
		}
	}
	return ""
}

// asciiFold appends to dst the lower-case ASCII form of k when every rune
// of k folds to an ASCII one, as every name the decoder reads is ASCII.
// Besides ASCII letters, only U+212A KELVIN SIGN (k) and U+017F LATIN
// SMALL LETTER LONG S (s) fold to ASCII under Unicode simple case folding.
func asciiFold(dst, k []byte) ([]byte, bool) {
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
func foldHash(k []byte) uint64 {
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
		h = (h ^ uint64(foldRune(r))) * 1099511628211
	}
	return h
}

// foldRune returns the smallest rune of r's simple case-folding orbit:
// two runes are equal under folding when their foldRune is. For ASCII
// letters it is the upper-case one.
func foldRune(r rune) rune {
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}

// unescapeKey returns the string a raw key denotes, decoding JSON escapes
// (rare: only then does it allocate).
func unescapeKey(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	return unescape(make([]byte, 0, len(raw)), raw)
}
