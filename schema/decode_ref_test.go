package schema_test

import (
	"bytes"
	"errors"
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

// FuzzDecodeMatchesReference holds the hand-written decoder to the one it
// replaced, on any input.
func FuzzDecodeMatchesReference(f *testing.F) {
	for _, s := range referenceSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sameAsReference(t, b)
	})
}
