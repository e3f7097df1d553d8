package schema_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/schema/schematest"
)

// sameAsReference fails when DecodeEvent and the decoder it replaced
// (schema.ReferenceDecodeEvent) differ on b: in the event, or in the
// refusal's reason, field and message.
func sameAsReference(t testing.TB, b []byte) {
	t.Helper()
	// Each decoder gets its own copy: neither may depend on the other
	// leaving the input alone.
	ev, err := schema.DecodeEvent(bytes.Clone(b))
	want, wantErr := schema.ReferenceDecodeEvent(bytes.Clone(b))
	var ve, wantVE *schema.ValidationError
	switch {
	case (err == nil) != (wantErr == nil):
		t.Fatalf("DecodeEvent says %v, the reference %v", err, wantErr)
	case err != nil && (!errors.As(err, &ve) || !errors.As(wantErr, &wantVE)):
		t.Fatalf("not a ValidationError: %v, reference %v", err, wantErr)
	case err != nil && *ve != *wantVE:
		t.Fatalf("DecodeEvent refuses with\n\t%+v\nthe reference with\n\t%+v", *ve, *wantVE)
	case err == nil && !reflect.DeepEqual(ev, want):
		t.Fatalf("DecodeEvent reads\n\t%#v\nthe reference\n\t%#v", ev, want)
	}
}

// referenceSeeds are the inputs the decoders are compared on in every
// test run: the golden file, the hostile corpus and FuzzDecodeEvent's
// committed corpus.
func referenceSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	golden, err := os.ReadFile("testdata/decode")
	if err != nil {
		tb.Fatal(err)
	}
	var in []string
	for _, line := range strings.Split(string(golden), "\n") {
		switch {
		case strings.HasPrefix(line, "decode"):
			in = []string{}
		case line == "----" && in != nil:
			seeds = append(seeds, []byte(strings.Join(in, "\n")))
			in = nil
		case in != nil:
			in = append(in, line)
		}
	}
	for _, c := range schematest.Hostile("SENTINEL-7f3a") {
		seeds = append(seeds, c.Raw)
	}
	files, err := filepath.Glob("testdata/fuzz/FuzzDecodeEvent/*")
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		// go test fuzz v1, then one []byte("...") line.
		lines := strings.SplitN(string(b), "\n", 2)
		if len(lines) != 2 || !strings.HasPrefix(lines[1], "[]byte(") {
			tb.Fatalf("%s: not a corpus file of one []byte", f)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(lines[1], "[]byte(")), ")"))
		if err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// edgeCases are inputs where the order of the decoder's findings, or a
// corner of JSON, decides the result.
func edgeCases() []string {
	const (
		head = `{"messageId":"m","type":"track","event":"X","userId":"u","timestamp":"2026-03-02T09:00:00Z"`
		ts   = `"timestamp":"2026-03-02T09:00:00Z"`
	)
	deep := func(open, close string, n int, inner string) string {
		return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
	}
	// many returns an object of n keys k0, k1, ..., then extra.
	many := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		return b.String() + extra + "}"
	}
	return []string{
		// A syntax error after a field of the wrong type wins; a field of
		// the wrong type wins over data after the object, and over what
		// the key check would find before it.
		`{"userId":5,"x":}`,
		`{"userId":5} x`,
		`{"userId":"a","userId":5,` + ts + `}`,
		`{"USERID":"a","userId":5}`,
		`{"properties":{"a":1e400},"userId":5}`,
		`{"userId":5,"properties":{"a":1e400}}`,
		`{"properties":{"a":1,"a":1e400}}`,
		`{"properties":{"PRICE":1,"a":[1e400]},"type":"track","event":"Product Added"}`,
		`{"properties":{"path":{"x":1e400}}}`,
		`{"traits":{"email":[1e999]}}`,
		`{"timestamp":5}`, `{"originalTimestamp":true}`, `{"sentAt":{}}`, `{"receivedAt":[]}`,
		`{"context":5}`, `{"context":{"page":"x"}}`, `{"context":{"page":{"path":5}}}`,
		`{"context":{"device":[1]}}`, `{"context":{"device":{"type":false}}}`, `{"context":{"userAgent":1}}`,
		`{"context":{"campaign":"x"}}`, `{"context":{"campaign":{"source":7}}}`,
		head + `,"context":{"campaign":{"source":"news","medium":"email","name":"spring","term":"t","content":"c","other":1}}}`,
		head + `,"context":{"campaign":{"source":"a","Source":"b"}}}`,
		head + `,"context":{"campaign":{"source":"a","source":"b"}}}`,
		head + `,"context":{"campaign":null,"Campaign":{}}}`,
		`{"properties":"x"}`, `{"traits":1}`, `{"type":{}}`, `{"event":[}`, `{"name":tru}`, `{"userId":nul}`,
		`{"userId":nullx}`, `{"properties":nullx}`, `{"userId":-}`, `{"userId":01}`,
		// Nesting beyond the key check's limit, with and without a
		// number beyond float64 at the bottom.
		head + `,"properties":{"a":` + deep("[", "]", 40, "1e400") + `}}`,
		head + `,"properties":{"a":` + deep("[", "]", 40, "1") + `}}`,
		head + `,"properties":{"a":` + deep(`{"b":`, "}", 40, "1") + `}}`,
		head + `,"integrations":` + deep("[", "]", 40, "1e400") + `}`,
		head + `,"integrations":` + deep("[", "]", 40, "1e400") + `,"userId":5}`,
		head + `,"integrations":` + deep("[", "]", 40, "1") + `,"x":}`,
		head + `,"properties":{"a":` + deep("[", "]", 31, "1") + `}}`,
		head + `,"properties":{"a":` + deep("[", "]", 30, "{}") + `}}`,
		deep("[", "]", 16000, ""), deep("[", "]", 16000, "") + "x", `"str"`, `123`, `true`, ` `, ``, "\x0b{}",
		// Large objects, whose keys are compared by hash, one after
		// another at the same depth.
		head + `,"properties":` + many(2200, `"z":0`) + `}`,
		head + `,"properties":` + many(100, `"K99":0`) + `}`,
		head + `,"properties":` + many(100, `"k5":0`) + `}`,
		head + `,"properties":` + many(20, `"\u212a5":0`) + `}`,
		head + `,"properties":{"a":` + many(40, `"x":0`) + `,"b":` + many(40, `"K3":0`) + `}}`,
		head + `,"integrations":{"a":` + many(40, `"x":0`) + `},"b":` + many(40, `"k3":0`) + `}`,
		many(50, `"TYPE":"track"`),
		// Catalogued properties named before the event is.
		`{"properties":{"PRICE":1},"type":"track","event":"Product Added","userId":"u",` + ts + `}`,
		`{"properties":{"Price":1},"type":"track","event":"X","userId":"u",` + ts + `}`,
		`{"properties":{"price":"1"},"type":"track","event":"Product Added","userId":"u",` + ts + `}`,
		// Keys and strings with escapes, surrogates, DEL, C1.
		`{"\u0074ype":"track","event":"\u0058","\u0075serId":"u\u0031",` + ts + `,"properties":{"\u0070ath":"/a","\u0050ath":1}}`,
		head + `,"properties":{"e":"\ud83d\ude00","f":"\ud83d","g":"\ude00\ud83d","h":"\ud83d\u0041"}}`,
		head + `,"integrations":{"a":"\udc00"}}`,
		head + `,"integrations":{"\ud800x":1}}`,
		head + `,"properties":{"k":1,"\u212a":2}}`,
		head + `,"properties":{"\u017fentAt":1,"":2,"\u0000":3}}`,
		`{"messageId":"m","type":"track","event":"X","userId":"u` + "\x7f" + `",` + ts + `}`,
		`{"messageId":"m","type":"track","event":"X` + "\xc2\x85" + `","userId":"u",` + ts + `}`,
		`{"messageId":"m","type":"track","event":"X` + "\xc2\xa0" + `","userId":"u",` + ts + `}`,
		`{"messageId":"m","type":"track","event":"X","userId":"u\u007f",` + ts + `}`,
		`{"messageId":"m\/n","type":"track","event":"X\"\\\b\f\n\r\t","userId":"u",` + ts + `}`,
		`{"messageId":"m","type":"track","event":"X","userId":"u","timestamp":"2026\u002d03-02T09:00:00Z"}`,
		`{"type":"track","event":"X","userId":"u","timestamp":"2026-03-02T09:00:00Z","messageId":"` + "\u00e9" + `"}`,
		// null, duplicates, merging.
		`{"messageId":"m","type":"page","userId":"u",` + ts + `,"context":null,"properties":null,"traits":null}`,
		`{"messageId":"m","type":"page","userId":"u",` + ts + `,"context":{"page":null,"device":null,"userAgent":null}}`,
		`{"messageId":"m","type":"page","userId":"u","timestamp":null,"originalTimestamp":"2026-03-02T09:00:00Z"}`,
		`{"messageId":"m","type":"page","userId":"u","timestamp":"","originalTimestamp":"2026-03-02T09:00:00Z"}`,
		`{"messageId":"m","type":"page","userId":"u",` + ts + `,"sentAt":""}`,
		`{"type":"track","type":null}`, `{"properties":{"a":1},"properties":{"b":2}}`, `{"context":{},"context":{}}`,
		// Numbers.
		head + `,"properties":{"a":-0,"b":1E5,"c":0.1e-2,"d":-1.5e+3,"e":123456789012345,"f":1234567890123456,"g":12345678901234567890,"h":1e15,"i":-0.0}}`,
		head + `,"properties":{"a":1.}}`, head + `,"properties":{"a":.1}}`, head + `,"properties":{"a":1e}}`,
		head + `,"properties":{"a":+1}}`, head + `,"properties":{"a":-}}`, head + `,"properties":{"a":0x1}}`,
		head + `,"context":{"screen":{"w":1e308,"h":-1e309}}}`,
		// Grammar.
		"  \t\r\n" + head + "  \n}\r\n\t ", head + `,}`, head + `,"properties":{"a":[1,2,]}}`,
		head + `,"properties":{"a":[,1]}}`, head + `,"properties":{,}}`, head + `,"properties":{"a" : 1 , "b":[ 1 , {} ] }}`,
		head + `,"a":"` + "\t" + `"}`, head + `,"a":"\x"}`, head + `,"a":"\u12G4"}`, head + `,"a":"\u12"}`, head + `,"a":"\`,
		head + `,"a":"\u00`, head + `,"a":tru`, head + `,"a":[1`, head + `,"a"`, head + `,"a":`, head + `,`, head,
		`{"a":1}{"b":2}`, `{} `, `{}` + "\x0b", `{"messageId":null}`,
	}
}

// TestDecodeMatchesReferenceEdges compares the decoders on edgeCases.
func TestDecodeMatchesReferenceEdges(t *testing.T) {
	for i, c := range edgeCases() {
		t.Run(strconv.Itoa(i), func(t *testing.T) { sameAsReference(t, []byte(c)) })
	}
}

// FuzzDecodeMatchesReference holds the hand-written decoder to the one it
// replaced, on any input.
func FuzzDecodeMatchesReference(f *testing.F) {
	for _, s := range referenceSeeds(f) {
		f.Add(s)
	}
	for _, s := range edgeCases() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAsReference(t, b)
	})
}
