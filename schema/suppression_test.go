package schema

import (
	"testing"
	"time"
)

// TestSuppressionRoundTrip checks that every field survives the encoding,
// and that the optional ones (until, cap) are left out when empty, so that
// records written before them keep their bytes.
func TestSuppressionRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		s    Suppression
		want string
	}{
		{Suppression{UserID: "u1", Trigger: "t", Step: 1, Template: "x", Reason: SuppressHoldout, At: at},
			`{"user_id":"u1","trigger":"t","step":1,"template":"x","reason":"holdout","at":"2026-03-02T09:00:00Z"}`},
		{Suppression{UserID: "u1", Trigger: "t", Step: 2, Template: "x", Reason: SuppressFrequencyCap, At: at, Cap: "promo/48h"},
			`{"user_id":"u1","trigger":"t","step":2,"template":"x","reason":"frequency_cap","at":"2026-03-02T09:00:00Z","cap":"promo/48h"}`},
		{Suppression{UserID: "u1", Trigger: "t", Step: 1, Template: "x", Variant: "B", Reason: SuppressSendWindow, At: at, Until: at.Add(10 * time.Hour)},
			`{"user_id":"u1","trigger":"t","step":1,"template":"x","variant":"B","reason":"send_window","at":"2026-03-02T09:00:00Z","until":"2026-03-02T19:00:00Z"}`},
	} {
		b, err := AppendSuppression(nil, &c.s)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.want {
			t.Errorf("encoded\n got %s\nwant %s", b, c.want)
		}
		got, err := UnmarshalSuppression(b)
		if err != nil {
			t.Fatal(err)
		}
		if got != c.s {
			t.Errorf("round trip: got %+v, want %+v", got, c.s)
		}
	}
	if !SuppressSendWindow.Deferral() || !SuppressQuietHours.Deferral() || SuppressFrequencyCap.Deferral() {
		t.Error("Deferral: only quiet_hours and send_window defer")
	}
}
