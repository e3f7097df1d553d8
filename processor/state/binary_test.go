package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// randomUser fills every field of a user from r.
func randomUser(r *rand.Rand) *User {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tm := func() time.Time {
		if r.IntN(5) == 0 {
			return time.Time{}
		}
		return t0.Add(time.Duration(r.Int64N(int64(60 * 24 * time.Hour))))
	}
	str := func() string { return fmt.Sprintf("s%d", r.IntN(1000)) }
	var val func(depth int) any
	val = func(depth int) any {
		switch r.IntN(7) {
		case 0:
			return nil
		case 1:
			return r.IntN(2) == 0
		case 2:
			return r.Float64() * 1000
		case 3, 4:
			return str()
		case 5:
			if depth > 2 {
				return str()
			}
			l := make([]any, r.IntN(3))
			for i := range l {
				l[i] = val(depth + 1)
			}
			return l
		default:
			if depth > 2 {
				return 1.5
			}
			m := map[string]any{}
			for i := r.IntN(3); i > 0; i-- {
				m[str()] = val(depth + 1)
			}
			return m
		}
	}
	obj := func() map[string]any {
		m := map[string]any{}
		for i := r.IntN(4); i > 0; i-- {
			m[str()] = val(0)
		}
		return m
	}
	u := &User{Key: str(), Traits: obj(), Zone: "Asia/Tokyo", FirstSeen: tm(), LastEvent: tm(),
		LastSeen: map[string]time.Time{str(): tm(), str(): tm()}, Counts: map[string]int64{str(): r.Int64N(99)},
		Pages:  map[string]*Page{str(): {Views: 3, Revisits: 1, First: tm(), Last: tm(), LastSession: tm(), MaxScroll: 75, Dwell: 12.5}},
		Hovers: map[string]int64{str(): 4}, Videos: map[string]float64{str(): 12.25}, VideoSeconds: 33,
		Cart:    Cart{Items: []CartItem{{ProductID: str(), Name: str(), Category: "premium", Price: 900, Quantity: 1, Added: tm()}}, Value: 900, FirstAdded: tm(), LastChanged: tm()},
		Session: Session{Start: tm(), Last: tm(), Events: 7, Scroll: map[string]float64{str(): 50}, Video: map[string]float64{str(): 10}},
		Score:   r.Float64(), ScoreAt: tm(),
		Aggs:         map[string]*Agg{str(): {Entries: []AggEntry{{T: tm(), K: str(), V: 1}, {T: tm(), V: 2}}}},
		Triggers:     map[string]*Trigger{str(): {Runs: 2, Sent: 1, LastEnd: tm(), Entered: true, CooldownNoted: tm()}},
		Unsubscribed: tm(), Bounced: tm(), SeenIDs: []uint64{r.Uint64(), r.Uint64()},
		Sends: []Send{{At: tm(), Trigger: str(), Step: 2}},
	}
	if r.IntN(2) == 0 {
		u.Triggers["running"] = &Trigger{Runs: 1, Run: &Run{Seq: 1, Started: tm(), Phase: PhaseStep, Step: 1, Due: tm(),
			Deferred: true, Variant: "B", Sent: 1, Last: tm(), Entry: Entry{ID: str(), Name: "page", Time: tm(), Path: "/x", Properties: obj()}}}
	}
	if r.IntN(2) == 0 {
		u.Device = str()
	}
	return u
}

// TestBinaryRoundTrip checks on random users that the binary encoding is
// stable (decode then encode gives the same bytes) and loses nothing (the
// decoded user has the same CBOR encoding as the original).
func TestBinaryRoundTrip(t *testing.T) {
	c := NewCodec()
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		u := randomUser(r)
		b, err := c.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.Unmarshal(b)
		if err != nil {
			t.Fatalf("user %d: %v", i, err)
		}
		b2, err := c.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("user %d: encoding is not stable", i)
		}
		want, _ := c.marshalCBOR(u)
		got, _ := c.marshalCBOR(v)
		if !bytes.Equal(want, got) {
			t.Fatalf("user %d: the round trip changed the state:\n%+v\n%+v", i, u, v)
		}
		// Version 1 values still decode to the same state.
		old, err := c.Unmarshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if b3, _ := c.Marshal(old); !bytes.Equal(b, b3) {
			t.Fatalf("user %d: the CBOR encoding reads back differently", i)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	c := NewCodec()
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 8; i++ {
		b, _ := c.Marshal(randomUser(r))
		f.Add(b)
	}
	f.Add([]byte{versionBinary})
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := c.Unmarshal(b)
		if err != nil || b[0] != versionBinary {
			return
		}
		again, err := c.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.Unmarshal(again)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		if third, _ := c.Marshal(v); !bytes.Equal(again, third) {
			t.Fatal("encoding is not stable")
		}
	})
}

func BenchmarkCodec(b *testing.B) {
	c := NewCodec()
	u := randomUser(rand.New(rand.NewPCG(5, 6)))
	cb, _ := c.marshalCBOR(u)
	bb, _ := c.Marshal(u)
	b.Logf("sizes: cbor %d bytes, binary %d bytes", len(cb), len(bb))
	b.Run("marshal/binary", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			c.Marshal(u)
		}
	})
	b.Run("marshal/cbor", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			c.marshalCBOR(u)
		}
	})
	b.Run("unmarshal/binary", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			c.Unmarshal(bb)
		}
	})
	b.Run("unmarshal/cbor", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			c.Unmarshal(cb)
		}
	})
}
