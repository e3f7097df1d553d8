package schema

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf16"
)

// keyCheck looks for what JSON decoders let through silently: duplicate
// object keys (the last one wins, so a validator and a consumer can see
// different events), lone UTF-16 surrogates in \u escapes (replaced by
// U+FFFD), and nesting too deep to be a tracker event. It runs on input the
// decoder has already accepted as JSON, so it only walks the structure;
// still, it never indexes past the input.
type keyCheck struct {
	b     []byte
	i     int
	depth int
	err   *ValidationError
	// Keys of all open objects, innermost last, as offsets into b: in the
	// array while they fit, so that a typical event allocates nothing.
	keys  [64]span
	nkeys int
	spill []span
	// The key of each open object member, for messages.
	path  [maxDepth + 1]span
	npath int
}

type span struct{ start, end int32 }

const maxDepth = 32

func checkKeys(b []byte) *ValidationError {
	var s keyCheck
	s.b = b
	s.ws()
	s.value()
	return s.err
}

func (s *keyCheck) key(i int) []byte {
	sp := s.keys[0]
	if i < len(s.keys) {
		sp = s.keys[i]
	} else {
		sp = s.spill[i-len(s.keys)]
	}
	return s.b[sp.start:sp.end]
}

func (s *keyCheck) pushKey(sp span) {
	if s.nkeys < len(s.keys) {
		s.keys[s.nkeys] = sp
	} else {
		s.spill = append(s.spill[:s.nkeys-len(s.keys)], sp)
	}
	s.nkeys++
}

func (s *keyCheck) fail(r Reason, format string, args ...any) {
	if s.err == nil {
		parts := make([]string, s.npath)
		for i, p := range s.path[:s.npath] {
			parts[i] = string(unescapeKey(s.b[p.start:p.end]))
		}
		s.err = invalid(r, strings.Join(parts, "."), format, args...)
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

func (s *keyCheck) value() {
	if s.err != nil || s.i >= len(s.b) {
		return
	}
	switch s.b[s.i] {
	case '{':
		s.object()
	case '[':
		s.array()
	case '"':
		s.str()
	default:
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
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
	s.fail(ReasonNotJSON, "unterminated string")
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
		s.fail(ReasonNotJSON, "nested deeper than %d levels", maxDepth)
		return false
	}
	return true
}

func (s *keyCheck) object() {
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
		sp := s.str()
		if s.err != nil {
			return
		}
		s.path[s.npath] = sp
		s.npath++
		k := s.b[sp.start:sp.end]
		for i := base; i < s.nkeys; i++ {
			if sameKey(s.key(i), k) {
				s.fail(ReasonDuplicateKey, "key appears more than once in its object")
				return
			}
		}
		s.pushKey(sp)
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ':' {
			s.i++
		}
		s.ws()
		s.value()
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
		s.value()
	}
}

// sameKey compares two raw keys as the strings they denote.
func sameKey(a, b []byte) bool {
	if bytes.IndexByte(a, '\\') < 0 && bytes.IndexByte(b, '\\') < 0 {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(unescapeKey(a), unescapeKey(b))
}

func unescapeKey(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	v, err := strconv.Unquote(`"` + string(raw) + `"`)
	if err != nil {
		return raw
	}
	return []byte(v)
}
