package engine_test

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/processor/engine"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/schema"
)

func benchPack(b *testing.B) *rules.Pack {
	p, err := rules.Load(os.DirFS("../../testdata/rules"), rules.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func decoded(b *testing.B, m map[string]any) schema.Event {
	m["userId"] = "user-1"
	m["timestamp"] = "2026-03-02T09:00:00Z"
	m["messageId"] = "m"
	raw, _ := json.Marshal(m)
	ev, err := schema.DecodeEvent(raw)
	if err != nil {
		b.Fatal(err)
	}
	return ev
}

// BenchmarkEvent measures one engine evaluation per event type with the
// whole example pack loaded, on a user with some history. "no-rule" is an
// event no rule wakes, exits on or aggregates: the index makes it skip
// every CEL program.
func BenchmarkEvent(b *testing.B) {
	pack := benchPack(b)
	eng := engine.New(pack, engine.Options{})
	cases := []struct {
		name string
		ev   map[string]any
	}{
		{"no-rule", map[string]any{"type": "track", "event": "Careers Viewed", "properties": map[string]any{"job": "sre"}}},
		{"page-blog", map[string]any{"type": "page", "context": map[string]any{"page": map[string]any{"path": "/blog"}}}},
		{"page-pricing", map[string]any{"type": "page", "context": map[string]any{"page": map[string]any{"path": "/pricing"}}}},
		{"heartbeat", map[string]any{"type": "track", "event": "Page Heartbeat", "properties": map[string]any{"seconds": 15}, "context": map[string]any{"page": map[string]any{"path": "/blog"}}}},
		{"product-added", map[string]any{"type": "track", "event": "Product Added", "properties": map[string]any{"product_id": "p1", "price": 40}}},
		{"product-viewed", map[string]any{"type": "track", "event": "Product Viewed", "properties": map[string]any{"product_id": "p9", "price": 900, "name": "x"}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ev := decoded(b, c.ev)
			base := state.New("user-1")
			base.Traits = map[string]any{"email": "u@example.com", "email_opt_in": true, "timezone": "UTC"}
			codec := state.NewCodec()
			warm := ev
			for i := 0; i < 20; i++ {
				warm.MessageID = "warm-" + string(rune('a'+i))
				warm.Timestamp = ev.Timestamp.Add(-time.Duration(20-i) * time.Hour)
				eng.Event(base, &warm)
			}
			u, _ := codec.Clone(base)
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = "id-" + strconv.Itoa(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e := ev
				e.MessageID = ids[i]
				eng.Event(u, &e)
			}
		})
	}
}
