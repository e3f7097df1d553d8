package schema

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner checks what JSON decoders let through silently: duplicate object
// keys (the last one wins, so a validator and a consumer can see different
// events), lone UTF-16 surrogates in \u escapes (replaced by U+FFFD) and
// nesting too deep to be a tracker event. It also rejects anything that is not
// a single JSON value, so it doubles as the syntax check.
type scanner struct {
	b     []byte
	i     int
	depth int
	err   *ValidationError
	keys  []string // key stack shared by all open objects
}

const maxDepth = 32

func checkJSON(b []byte) *ValidationError {
	s := scanner{b: b}
	s.ws()
	if !s.value("") {
		return s.err
	}
	s.ws()
	if s.i != len(s.b) {
		return s.fail(ReasonNotJSON, "", "unexpected data after the JSON value at byte %d", s.i)
	}
	return nil
}

func (s *scanner) fail(r Reason, field, format string, args ...any) *ValidationError {
	if s.err == nil {
		s.err = invalid(r, field, format, args...)
	}
	return s.err
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) value(path string) bool {
	if s.i >= len(s.b) {
		s.fail(ReasonNotJSON, path, "unexpected end of input")
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(path)
	case c == '[':
		return s.array(path)
	case c == '"':
		_, ok := s.str(path)
		return ok
	case c == 't':
		return s.lit("true", path)
	case c == 'f':
		return s.lit("false", path)
	case c == 'n':
		return s.lit("null", path)
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number(path)
	default:
		s.fail(ReasonNotJSON, path, "unexpected character %q at byte %d", c, s.i)
		return false
	}
}

func (s *scanner) lit(word, path string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		s.fail(ReasonNotJSON, path, "invalid literal at byte %d", s.i)
		return false
	}
	s.i += len(word)
	return true
}

func (s *scanner) number(path string) bool {
	start := s.i
	if s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		s.fail(ReasonNotJSON, path, "invalid number at byte %d", start)
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			s.fail(ReasonNotJSON, path, "invalid number at byte %d", start)
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			s.fail(ReasonNotJSON, path, "invalid number at byte %d", start)
			return false
		}
	}
	return true
}

// str scans a string and returns its raw contents when it holds no escapes,
// or its decoded value when it does (needed only for keys).
func (s *scanner) str(path string) (string, bool) {
	start := s.i + 1
	s.i++
	escaped := false
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			if !escaped {
				return string(raw), true
			}
			v, err := strconv.Unquote(`"` + string(raw) + `"`)
			if err != nil {
				// strconv.Unquote differs from JSON only in escapes JSON
				// does not have; the loop below already refused those.
				return string(raw), true
			}
			return v, true
		case c < 0x20:
			s.fail(ReasonNotJSON, path, "control character in string at byte %d", s.i)
			return "", false
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				s.fail(ReasonNotJSON, path, "unterminated string")
				return "", false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				r, ok := s.hex4(s.i + 2)
				if !ok {
					s.fail(ReasonNotJSON, path, "invalid \\u escape at byte %d", s.i)
					return "", false
				}
				s.i += 6
				if utf16.IsSurrogate(r) {
					// A high surrogate must be followed by an escaped low one.
					lo, ok2 := rune(0), false
					if r < 0xdc00 && s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
						lo, ok2 = s.hex4(s.i + 2)
					}
					if !ok2 || utf16.DecodeRune(r, lo) == utf8.RuneError {
						s.fail(ReasonInvalidUTF8, path, "lone UTF-16 surrogate in \\u escape at byte %d", s.i-6)
						return "", false
					}
					s.i += 6
				}
			default:
				s.fail(ReasonNotJSON, path, "invalid escape at byte %d", s.i)
				return "", false
			}
		default:
			s.i++
		}
	}
	s.fail(ReasonNotJSON, path, "unterminated string")
	return "", false
}

func (s *scanner) hex4(at int) (rune, bool) {
	if at+4 > len(s.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s.b[at:at+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(v), true
}

func (s *scanner) enter(path string) bool {
	s.depth++
	if s.depth > maxDepth {
		s.fail(ReasonNotJSON, path, "nested deeper than %d levels", maxDepth)
		return false
	}
	return true
}

func (s *scanner) object(path string) bool {
	if !s.enter(path) {
		return false
	}
	s.i++ // {
	base := len(s.keys)
	defer func() { s.keys = s.keys[:base]; s.depth-- }()
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			s.fail(ReasonNotJSON, path, "expected an object key at byte %d", s.i)
			return false
		}
		key, ok := s.str(path)
		if !ok {
			return false
		}
		field := key
		if path != "" {
			field = path + "." + key
		}
		for _, k := range s.keys[base:] {
			if k == key {
				s.fail(ReasonDuplicateKey, field, "key appears more than once in its object")
				return false
			}
		}
		s.keys = append(s.keys, key)
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			s.fail(ReasonNotJSON, field, "expected ':' at byte %d", s.i)
			return false
		}
		s.i++
		s.ws()
		if !s.value(field) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			s.fail(ReasonNotJSON, path, "unterminated object")
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			s.fail(ReasonNotJSON, path, "expected ',' or '}' at byte %d", s.i)
			return false
		}
	}
}

func (s *scanner) array(path string) bool {
	if !s.enter(path) {
		return false
	}
	defer func() { s.depth-- }()
	s.i++ // [
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return true
	}
	for {
		s.ws()
		if !s.value(path + "[]") {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			s.fail(ReasonNotJSON, path, "unterminated array")
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			s.fail(ReasonNotJSON, path, "expected ',' or ']' at byte %d", s.i)
			return false
		}
	}
}
