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
	keys  [][]byte // keys of all open objects, innermost last
	path  [][]byte // key of each open object member, for messages
}

const maxDepth = 32

func checkKeys(b []byte) *ValidationError {
	var keys, path [24][]byte
	s := keyCheck{b: b, keys: keys[:0], path: path[:0]}
	s.ws()
	s.value()
	return s.err
}

func (s *keyCheck) fail(r Reason, format string, args ...any) {
	if s.err == nil {
		parts := make([]string, len(s.path))
		for i, p := range s.path {
			parts[i] = string(unescapeKey(p))
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

// str skips a string and returns its raw contents (escapes undecoded).
func (s *keyCheck) str() []byte {
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
			return s.b[start : j+q]
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
				return nil
			}
			j += 6
		}
	}
	s.fail(ReasonNotJSON, "unterminated string")
	return nil
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
	base := len(s.keys)
	defer func() { s.keys = s.keys[:base] }()
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
		k := s.str()
		if s.err != nil {
			return
		}
		s.path = append(s.path, k)
		for _, prev := range s.keys[base:] {
			if sameKey(prev, k) {
				s.fail(ReasonDuplicateKey, "key appears more than once in its object")
				return
			}
		}
		s.keys = append(s.keys, k)
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ':' {
			s.i++
		}
		s.ws()
		s.value()
		if s.err != nil {
			return
		}
		s.path = s.path[:len(s.path)-1]
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
