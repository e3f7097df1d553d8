package schema

import (
	"bytes"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestASCIIFold: the runes asciiFold maps to ASCII are exactly the
// non-ASCII runes whose case-folding orbit holds an ASCII letter.
func TestASCIIFold(t *testing.T) {
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		var ascii rune = -1
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < utf8.RuneSelf {
				ascii = unicode.ToLower(f)
			}
		}
		got, ok := asciiFold(nil, utf8.AppendRune(nil, r))
		if ok != (ascii >= 0) || ok && (len(got) != 1 || rune(got[0]) != ascii) {
			t.Errorf("asciiFold(%U) = %q, %v; want %q", r, got, ok, ascii)
		}
	}
}

// TestFoldHash: keys equal under bytes.EqualFold hash alike, rune by rune.
func TestFoldHash(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xd800 && r < 0xe000 {
			continue
		}
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			a, b := utf8.AppendRune([]byte("k"), r), utf8.AppendRune([]byte("K"), f)
			if !bytes.EqualFold(a, b) || foldHash(a) != foldHash(b) {
				t.Fatalf("%U and %U: EqualFold %v, hashes %x %x", r, f, bytes.EqualFold(a, b), foldHash(a), foldHash(b))
			}
		}
	}
	if foldHash([]byte("userId")) == foldHash([]byte("userıd")) {
		t.Fatal("dotless i hashes as i, which does not fold to it")
	}
}

func TestNumberOver(t *testing.T) {
	for _, c := range []struct {
		n    string
		over bool
	}{
		{"0", false}, {"-0", false}, {"999999999999999", false}, {"999999999999999.999", false},
		{"1000000000000000", false}, {"1000000000000001", true}, {"-1000000000000001", true},
		{"1e15", false}, {"1.00000000000000001e15", false}, {"1.1e15", true}, {"1e16", true}, {"1e400", true},
		{"1e-400", false}, {"0.0000000000000000000001", false}, {"12345678901234567890e-10", false},
	} {
		if got := numberOver([]byte(c.n), MaxNumber); got != c.over {
			t.Errorf("numberOver(%s) = %v", c.n, got)
		}
	}
}
