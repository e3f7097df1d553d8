package schema_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	stdjson "encoding/json"
	"github.com/cockroachdb/datadriven"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/schema/schematest"
)

// describe renders a decode result for golden files.
func describe(ev schema.Event, err error) string {
	if err != nil {
		var ve *schema.ValidationError
		if !errors.As(err, &ve) {
			return "error (not a ValidationError): " + err.Error()
		}
		return fmt.Sprintf("rejected %s field=%q: %s", ve.Reason, ve.Field, ve.Msg)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ok %s key=%q user=%q id=%q at=%s", ev.Type, ev.Key(), ev.UserKey(), ev.MessageID, schema.FormatTime(ev.Timestamp))
	if p := ev.Path(); p != "" {
		fmt.Fprintf(&b, " path=%q", p)
	}
	if !ev.SentAt.IsZero() {
		fmt.Fprintf(&b, " sent=%s", schema.FormatTime(ev.SentAt))
	}
	if !ev.ReceivedAt.IsZero() {
		fmt.Fprintf(&b, " received=%s", schema.FormatTime(ev.ReceivedAt))
	}
	keys := make([]string, 0, len(ev.Properties))
	for k := range ev.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, ev.Properties[k])
	}
	return b.String()
}

func TestDecodeGolden(t *testing.T) {
	datadriven.RunTest(t, "testdata/decode", func(t *testing.T, d *datadriven.TestData) string {
		switch d.Cmd {
		case "decode":
			in := []byte(strings.TrimSuffix(d.Input, "\n"))
			ev, err := schema.DecodeEvent(in)
			// arrive (the record's timestamp) and skew check the event
			// time against its arrival, as every driver does.
			if err == nil && d.HasArg("skew") {
				var skew, arrive string
				d.ScanArgs(t, "skew", &skew)
				var transport time.Time
				if d.HasArg("arrive") {
					d.ScanArgs(t, "arrive", &arrive)
					if transport, err = time.Parse(time.RFC3339, arrive); err != nil {
						t.Fatal(err)
					}
				}
				max, perr := time.ParseDuration(skew)
				if perr != nil {
					t.Fatal(perr)
				}
				err = schema.CheckArrival(&ev, transport, max)
			}
			return describe(ev, err) + "\n"
		default:
			t.Fatalf("unknown command %q", d.Cmd)
			return ""
		}
	})
}

// TestDecodeLimits covers inputs that do not fit in a golden file.
func TestDecodeLimits(t *testing.T) {
	big := `{"type":"track","event":"X","userId":"u","timestamp":"2026-03-02T09:00:00Z","properties":{"pad":"` +
		strings.Repeat("x", schema.MaxEventBytes) + `"}}`
	cases := []struct {
		name   string
		in     []byte
		reason schema.Reason
	}{
		{"oversized", []byte(big), schema.ReasonTooLarge},
		{"invalid utf-8", []byte("{\"type\":\"track\",\"event\":\"\xff\",\"userId\":\"u\",\"timestamp\":\"2026-03-02T09:00:00Z\"}"), schema.ReasonInvalidUTF8},
		{"deep nesting", []byte(`{"type":"track","event":"X","userId":"u","timestamp":"2026-03-02T09:00:00Z","properties":{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`), schema.ReasonNotJSON},
		{"empty", nil, schema.ReasonNotJSON},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := schema.DecodeEvent(c.in)
			var ve *schema.ValidationError
			if !errors.As(err, &ve) || ve.Reason != c.reason {
				t.Fatalf("got %v, want reason %s", err, c.reason)
			}
		})
	}
}

// TestJSONSchemaAgrees runs every golden input through the published JSON
// Schema too: an event the decoder accepts must be valid against it, and one
// it refuses for a reason JSON Schema can express must be invalid.
func TestJSONSchemaAgrees(t *testing.T) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema.EventJSONSchema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("event.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("event.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	// Reasons JSON Schema cannot express (byte-level checks) or that depend
	// on data outside the document (the zone database).
	beyond := map[schema.Reason]bool{
		schema.ReasonTooLarge: true, schema.ReasonInvalidUTF8: true, schema.ReasonNotJSON: true,
		schema.ReasonDuplicateKey: true, schema.ReasonAmbiguousKey: true, schema.ReasonBadTime: true, schema.ReasonBadTrait: true,
	}
	checked := 0
	datadriven.Walk(t, "testdata/decode", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			in := []byte(strings.TrimSuffix(d.Input, "\n"))
			_, decErr := schema.DecodeEvent(in)
			var ve *schema.ValidationError
			if errors.As(decErr, &ve) && beyond[ve.Reason] {
				return d.Expected
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(in))
			if err != nil {
				return d.Expected
			}
			schemaErr := sch.Validate(inst)
			checked++
			if (decErr == nil) != (schemaErr == nil) {
				t.Errorf("%s: decoder says %v, JSON Schema says %v", d.Pos, decErr, schemaErr)
			}
			return d.Expected
		})
	})
	if checked < 10 {
		t.Fatalf("only %d golden inputs compared", checked)
	}
}

func TestCommandRoundTrip(t *testing.T) {
	// Contract order, expires_at right after send_at, times in UTC.
	in := []byte(`{"id":"abc","user_id":"u1","email":"ada@example.com","trigger":"t","step":1,"template":"x","variant":"A","intent":"high","send_at":"2026-03-02T09:13:00Z","expires_at":"2026-03-02T10:28:00+01:00","data":{"b":2,"a":"x"},"cause":"m1"}`)
	c, err := schema.UnmarshalCommand(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := schema.MarshalCommand(&c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"abc","user_id":"u1","email":"ada@example.com","trigger":"t","step":1,"template":"x","variant":"A","intent":"high","send_at":"2026-03-02T09:13:00Z","expires_at":"2026-03-02T09:28:00Z","data":{"a":"x","b":2},"cause":"m1"}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	a, b := schema.CommandID("u1", "t", 1, "m1"), schema.CommandID("u1", "t", 1, "m"+"1")
	if a != b || a == schema.CommandID("u1", "t", 2, "m1") || len(a) != 32 {
		t.Fatal("CommandID is not a deterministic function of its inputs")
	}
}

// TestCommandExpiry: a command carries its expires_at through the
// encoding; one written before the field existed still decodes, encodes as
// it did, and takes its expiry from its intent.
func TestCommandExpiry(t *testing.T) {
	const head = `{"id":"abc","user_id":"u1","email":"ada@example.com","trigger":"t","step":1,"template":"x","variant":"","intent":`
	sendAt := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, in   string
		wantExpiry time.Time
		wantErr    string
	}{
		{"high without expires_at", head + `"high","send_at":"2026-03-02T09:00:00Z","data":{},"cause":"m"}`, sendAt.Add(15 * time.Minute), ""},
		{"mid without expires_at", head + `"mid","send_at":"2026-03-02T09:00:00Z","data":{},"cause":"m"}`, sendAt.Add(3 * time.Hour), ""},
		{"low without expires_at", head + `"low","send_at":"2026-03-02T09:00:00Z","data":{},"cause":"m"}`, sendAt.Add(24 * time.Hour), ""},
		{"unknown intent without expires_at", head + `"","send_at":"2026-03-02T09:00:00Z","data":{},"cause":"m"}`, sendAt.Add(24 * time.Hour), ""},
		{"expires_at wins over the intent", head + `"high","send_at":"2026-03-02T09:00:00Z","expires_at":"2026-03-02T11:00:00Z","data":{},"cause":"m"}`, sendAt.Add(2 * time.Hour), ""},
		{"unparsable expires_at", head + `"high","send_at":"2026-03-02T09:00:00Z","expires_at":"soon","data":{},"cause":"m"}`, time.Time{}, "decode send-command abc: expires_at: "},
		{"expires_at at send_at", head + `"high","send_at":"2026-03-02T09:00:00Z","expires_at":"2026-03-02T09:00:00Z","data":{},"cause":"m"}`, time.Time{}, "decode send-command abc: expires_at is not after send_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := schema.UnmarshalCommand([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Expiry(); !got.Equal(tc.wantExpiry) {
				t.Fatalf("Expiry() = %s, want %s", got, tc.wantExpiry)
			}
			out, err := schema.MarshalCommand(&c)
			if err != nil {
				t.Fatal(err)
			}
			// Without expires_at the bytes are those that were read: the
			// derived expiry is not written back.
			if !strings.Contains(tc.in, "expires_at") && string(out) != tc.in {
				t.Fatalf("re-encoded as %s", out)
			}
		})
	}
	for intent, want := range map[string]time.Duration{
		schema.IntentHigh: 15 * time.Minute, schema.IntentMid: 3 * time.Hour, schema.IntentLow: 24 * time.Hour, "urgent": 0,
	} {
		if got := schema.IntentWindow(intent); got != want {
			t.Errorf("IntentWindow(%q) = %s, want %s", intent, got, want)
		}
	}
}

func TestMask(t *testing.T) {
	if got := schema.MaskEmail("ada@example.com"); got != "a***@example.com" {
		t.Fatalf("MaskEmail = %q", got)
	}
	if got := schema.MaskUser("user-42"); strings.Contains(got, "42") || len(got) != 10 {
		t.Fatalf("MaskUser = %q", got)
	}
}

// checkSafe fails when a ValidationError names a field the schema does not
// define or says a word of its own making: anything else came from the
// record.
func checkSafe(t testing.TB, ve *schema.ValidationError) {
	t.Helper()
	if err := schematest.Safe(ve); err != nil {
		t.Fatal(err)
	}
}

// hasControl reports a C0, DEL or C1 control character.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || 0x7f <= r && r <= 0x9f })
}

// checkNumbers fails on a number that is not finite or over MaxNumber.
func checkNumbers(t testing.TB, v any) {
	switch v := v.(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > schema.MaxNumber {
			t.Fatalf("accepted number %v", v)
		}
	case map[string]any:
		for _, x := range v {
			checkNumbers(t, x)
		}
	case []any:
		for _, x := range v {
			checkNumbers(t, x)
		}
	}
}

// foldedKeys fails when an object of b holds two keys equal under case
// folding, reading b with the standard library's tokenizer.
func foldedKeys(t testing.TB, b []byte) {
	type frame struct {
		obj, wantKey bool
		keys         []string
	}
	var stack []*frame
	d := stdjson.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("accepted record does not tokenize: %v", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if k, isKey := tok.(string); isKey && top != nil && top.obj && top.wantKey {
			for _, o := range top.keys {
				if strings.EqualFold(o, k) {
					t.Fatalf("accepted an object with keys %q and %q", o, k)
				}
			}
			top.keys = append(top.keys, k)
			top.wantKey = false
			continue
		}
		switch tok {
		case stdjson.Delim('{'):
			stack = append(stack, &frame{obj: true, wantKey: true})
			continue
		case stdjson.Delim('['):
			stack = append(stack, &frame{})
			continue
		case stdjson.Delim('}'), stdjson.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				top = stack[len(stack)-1]
			} else {
				top = nil
			}
		}
		if top != nil && top.obj {
			top.wantKey = true
		}
	}
}

// stdEnvelope is what a case-insensitive reader (encoding/json) takes from
// a record.
type stdEnvelope struct {
	MessageID   *string        `json:"messageId"`
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
	Context     schema.Context `json:"context"`
}

func parsedAs(t testing.TB, s *string, want time.Time) {
	t.Helper()
	if s == nil {
		if !want.IsZero() {
			t.Fatalf("time %s read from nothing", want)
		}
		return
	}
	got, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil || !got.Equal(want) {
		t.Fatalf("time %q read as %s", *s, want)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, s := range []string{
		`{"type":"track","event":"Product Added","userId":"u1","timestamp":"2026-03-02T09:00:00Z","properties":{"price":120}}`,
		`{"type":"page","anonymousId":"a","timestamp":"2026-03-02T09:00:00Z","context":{"page":{"path":"/pricing"}}}`,
		`{"type":"identify","userId":"u","timestamp":"2026-03-02T09:00:00Z","traits":{"email":"a@b.c","timezone":"Asia/Tokyo"}}`,
		`{"type":"track","event":"x","userId":"u","userId":"v","timestamp":"2026-03-02T09:00:00Z"}`,
		`{"type":"track","event":"\ud800","userId":"u","timestamp":"2026-03-02T09:00:00Z"}`,
		`{"type":"track","event":"x","userId":"a","userid":"b","timestamp":"2026-03-02T09:00:00Z","Timestamp":"2026-03-01T09:00:00Z"}`,
		`{"type":"track","event":"x","userId":"a\u0000","timestamp":"2026-03-02T09:00:00Z","properties":{"n":1e400}}`,
	} {
		f.Add([]byte(s))
	}
	// Every input of the golden file is a seed too.
	golden, err := os.ReadFile("testdata/decode")
	if err != nil {
		f.Fatal(err)
	}
	var in []string
	for _, line := range strings.Split(string(golden), "\n") {
		switch {
		case strings.HasPrefix(line, "decode"):
			in = []string{}
		case line == "----" && in != nil:
			f.Add([]byte(strings.Join(in, "\n")))
			in = nil
		case in != nil:
			in = append(in, line)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := schema.DecodeEvent(b)
		if err != nil {
			var ve *schema.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is not a ValidationError: %v", err)
			}
			checkSafe(t, ve)
			return
		}
		if ev.UserKey() == "" || ev.Timestamp.IsZero() || ev.MessageID == "" {
			t.Fatalf("accepted event lacks key, time or id: %+v", ev)
		}
		for _, s := range []string{ev.MessageID, ev.UserID, ev.AnonymousID, ev.Event, ev.Name, ev.Path(),
			ev.Context.Page.URL, ev.Context.Timezone, ev.Context.Locale, ev.Context.Device.Type} {
			if hasControl(s) {
				t.Fatalf("accepted a control character in %q", s)
			}
		}
		checkNumbers(t, ev.Properties)
		checkNumbers(t, ev.Traits)
		foldedKeys(t, b)
		// What is validated is what is decoded: the standard library,
		// which matches keys case-insensitively, must read the same
		// event from an accepted record.
		var std stdEnvelope
		if err := stdjson.Unmarshal(b, &std); err != nil {
			t.Fatalf("accepted record does not decode: %v", err)
		}
		if std.Type != ev.Type || std.UserID != ev.UserID || std.AnonymousID != ev.AnonymousID ||
			std.Event != ev.Event || std.Name != ev.Name || std.MessageID != nil && *std.MessageID != "" && *std.MessageID != ev.MessageID ||
			std.Context != ev.Context {
			t.Fatalf("decoders disagree: %+v vs %+v", std, ev)
		}
		ts := std.Timestamp
		if ts == nil {
			ts = std.Original
		}
		parsedAs(t, ts, ev.Timestamp)
		parsedAs(t, std.SentAt, ev.SentAt)
		parsedAs(t, std.ReceivedAt, ev.ReceivedAt)
		for _, m := range []struct{ std, ev map[string]any }{{std.Properties, ev.Properties}, {std.Traits, ev.Traits}} {
			if (len(m.std) != 0 || len(m.ev) != 0) && !reflect.DeepEqual(m.std, m.ev) {
				t.Fatalf("decoders disagree: %v vs %v", m.std, m.ev)
			}
		}
	})
}

// TestHostileEvents decodes the hostile corpus: each record gets its
// expected reason, and no error repeats a byte of the sentinel planted in
// every value and key, in any case.
func TestHostileEvents(t *testing.T) {
	const sentinel = "SENTINEL-7f3a"
	seen := map[schema.Reason]bool{}
	for _, c := range schematest.Hostile(sentinel) {
		t.Run(c.Name, func(t *testing.T) {
			if bytes.IndexByte(c.Raw, '\n') >= 0 {
				t.Fatal("record holds a newline")
			}
			ev, err := schema.DecodeEvent(c.Raw)
			if err == nil && c.Reason == schema.ReasonFutureTime {
				err = schema.CheckArrival(&ev, time.Time{}, 10*time.Minute)
			}
			var ve *schema.ValidationError
			switch {
			case c.Reason == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.Reason == "":
				return
			case !errors.As(err, &ve) || ve.Reason != c.Reason:
				t.Fatalf("got %v, want reason %s", err, c.Reason)
			}
			seen[ve.Reason] = true
			if msg := strings.ToUpper(err.Error()); strings.Contains(msg, "SENTINEL") || strings.Contains(msg, "7F3A") {
				t.Fatalf("the error repeats the record: %v", err)
			}
			checkSafe(t, ve)
		})
	}
	for _, r := range schema.EventReasons() {
		if !seen[r] {
			t.Errorf("no hostile record is refused as %s", r)
		}
	}
}
