package state_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/processor/state"
)

// TestEnforceBoundsAndCounts grows one user past every bound: the oldest or
// least used entries go, every one of them is counted, and what policy
// reads (email, timezone, consent) is never evicted.
func TestEnforceBoundsAndCounts(t *testing.T) {
	l := state.DefaultLimits()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	u := state.New("noisy")
	u.Traits = map[string]any{"email": "n@example.com", "timezone": "UTC", "email_opt_in": true}
	u.Pages = map[string]*state.Page{}
	u.LastSeen = map[string]time.Time{}
	u.Counts = map[string]int64{}
	u.Hovers = map[string]int64{}
	for i := 0; i < 1000; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		u.Pages[fmt.Sprintf("/p/%04d", i)] = &state.Page{Views: 1, Last: at}
		u.LastSeen[fmt.Sprintf("Event %04d", i)] = at
		u.Counts[fmt.Sprintf("Event %04d", i)] = 1
		u.Hovers[fmt.Sprintf("el-%04d", i)] = int64(i)
		u.Traits[fmt.Sprintf("t%04d", i)] = i
		u.SeenIDs = append(u.SeenIDs, uint64(i))
		u.Sends = append(u.Sends, state.Send{At: at})
		u.Cart.Items = append(u.Cart.Items, state.CartItem{ProductID: fmt.Sprint(i)})
	}
	var ev state.Evictions
	u.Enforce(l, &ev)
	for _, c := range []struct {
		name      string
		len, max  int
		evicted   int
		wantEvict int
	}{
		{"pages", len(u.Pages), l.Pages, ev.Pages, 1000 - l.Pages},
		{"event keys", len(u.LastSeen), l.EventKeys, ev.EventKeys, 1000 - l.EventKeys},
		{"hovers", len(u.Hovers), l.Elements, ev.Elements, 1000 - l.Elements},
		{"seen ids", len(u.SeenIDs), l.SeenIDs, ev.SeenIDs, 1000 - l.SeenIDs},
		{"sends", len(u.Sends), l.Sends, ev.Sends, 1000 - l.Sends},
		{"cart items", len(u.Cart.Items), l.CartItems, ev.CartItems, 1000 - l.CartItems},
		{"traits", len(u.Traits), l.Traits, ev.Traits, 1003 - l.Traits},
	} {
		if c.len != c.max || c.evicted != c.wantEvict {
			t.Errorf("%s: %d kept (bound %d), %d evicted (want %d)", c.name, c.len, c.max, c.evicted, c.wantEvict)
		}
	}
	if len(u.Counts) != len(u.LastSeen) {
		t.Errorf("counts and last_seen disagree: %d vs %d", len(u.Counts), len(u.LastSeen))
	}
	if u.Pages["/p/0999"] == nil || u.Pages["/p/0000"] != nil {
		t.Error("pages: the most recently viewed must stay, the oldest go")
	}
	if u.Hovers["el-0999"] == 0 || u.Hovers["el-0000"] != 0 {
		t.Error("hovers: the most hovered must stay")
	}
	if u.SeenIDs[len(u.SeenIDs)-1] != 999 || u.Cart.Items[0].ProductID != fmt.Sprint(1000-l.CartItems) {
		t.Error("lists must keep their newest entries")
	}
	for _, k := range []string{"email", "timezone", "email_opt_in"} {
		if _, ok := u.Traits[k]; !ok {
			t.Errorf("trait %s was evicted", k)
		}
	}
	kinds := map[string]int{}
	ev.Each(func(kind string, n int) { kinds[kind] = n })
	if kinds["pages"] != ev.Pages || kinds["traits"] != ev.Traits {
		t.Errorf("Each reports %v", kinds)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	c := state.NewCodec()
	u := state.New("u1")
	u.Traits = map[string]any{"email": "a@example.com", "lifetime_value": 600.0, "n": map[string]any{"x": 1.0}}
	u.LastEvent = time.Date(2026, 3, 2, 9, 0, 0, 123456789, time.UTC)
	u.Triggers = map[string]*state.Trigger{"t": {Run: &state.Run{Due: u.LastEvent, Entry: state.Entry{ID: "m", Properties: map[string]any{"price": 12.5}}}}}
	b, err := c.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := c.Marshal(v)
	if string(b) != string(b2) || !v.LastEvent.Equal(u.LastEvent) || v.Traits["lifetime_value"] != 600.0 {
		t.Fatalf("round trip changed the state: %+v", v)
	}
	if _, err := c.Unmarshal(append([]byte{9}, b[1:]...)); err == nil {
		t.Fatal("an unknown version was accepted")
	}
}
