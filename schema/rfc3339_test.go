package schema

import (
	"testing"
	"time"
)

// TestParseRFC3339 holds parseRFC3339 to time.Parse wherever it answers,
// and checks it answers for the usual shapes.
func TestParseRFC3339(t *testing.T) {
	for _, c := range rfc3339Cases() {
		got, ok := parseRFC3339(c.v)
		if ok != c.fast {
			t.Errorf("parseRFC3339(%q) answers %v, want %v", c.v, ok, c.fast)
		}
		if !ok {
			continue
		}
		want, err := time.Parse(time.RFC3339Nano, c.v)
		if err != nil || !got.Equal(want) || got.UTC() != want.UTC() {
			t.Errorf("parseRFC3339(%q) = %v, time.Parse %v, %v", c.v, got, want, err)
		}
	}
}

func rfc3339Cases() []struct {
	v    string
	fast bool
} {
	return []struct {
		v    string
		fast bool
	}{
		{"2026-03-02T09:00:00Z", true}, {"2026-03-02T09:00:00.123Z", true}, {"2026-03-02T09:00:00.123456789Z", true},
		{"2026-03-02T09:00:00.1234567891234Z", true}, {"2026-03-02T10:00:00+01:00", true}, {"2026-03-02T01:30:00-07:30", true},
		{"2024-02-29T00:00:00Z", true}, {"2023-02-29T00:00:00Z", false}, {"2100-02-29T00:00:00Z", false}, {"2000-02-29T23:59:59Z", true},
		{"0000-01-01T00:00:00Z", true}, {"9999-12-31T23:59:59.999999999+23:59", true}, {"1969-12-31T23:59:59-00:01", true},
		{"2026-13-01T00:00:00Z", false}, {"2026-04-31T00:00:00Z", false}, {"2026-03-02T24:00:00Z", false},
		{"2026-03-02T09:60:00Z", false}, {"2026-03-02T09:00:60Z", false}, {"2026-03-02T9:00:00Z", false},
		{"2026-03-02t09:00:00Z", false}, {"2026-03-02T09:00:00z", false}, {"2026-03-02T09:00:00", false},
		{"2026-03-02T09:00:00+24:00", false}, {"2026-03-02T09:00:00+01:60", false}, {"2026-03-02T09:00:00+0100", false},
		{"2026-03-02T09:00:00.Z", false}, {"2026-03-02T09:00:00,5Z", false}, {"2026-03-02T09:00:00.5", false},
		{"+026-03-02T09:00:00Z", false}, {"2026-03-02 09:00:00Z", false}, {"", false}, {"2026-03-02T09:00:00ZZ", false},
	}
}

func FuzzParseRFC3339(f *testing.F) {
	for _, c := range rfc3339Cases() {
		f.Add(c.v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, ok := parseRFC3339(v)
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || got.UTC() != want.UTC() {
			t.Fatalf("parseRFC3339(%q) = %v, time.Parse %v, %v", v, got, want, err)
		}
		// parseTime bounds the year written, where the decoder it
		// replaced bounded that of time.Parse's time.
		if y, _ := digits(v[:4], 0, 9999); y != want.Year() {
			t.Fatalf("%q: year %d, time.Parse %d", v, y, want.Year())
		}
	})
}
