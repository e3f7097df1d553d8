package engine_test

import (
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/internal/clickstream"
	"github.com/microtrigger/microtrigger/processor/engine"
	"github.com/microtrigger/microtrigger/processor/engine/enginetest"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/schema"
)

// historyStream is the clickstream the history benchmarks replay: 2,000
// users of about ten events each over two days, the shape of the
// processor's throughput benchmark.
func historyStream(b *testing.B) []schema.Event {
	evs, err := enginetest.Decode(clickstream.Generate(clickstream.Config{Users: 2000, EventsPerUser: 10, Seed: 1}))
	if err != nil {
		b.Fatal(err)
	}
	return evs
}

// BenchmarkHistory measures one input per event type on users with
// history: the states a replay of historyStream leaves. Each op applies
// one event to the next user, a minute after that user's last event (its
// timers due by then fired beforehand, unmeasured); after a pass over all
// users their states are restored, unmeasured, so every op meets a user
// with exactly its replayed history. cpu-ns/op is the process's CPU time
// per op: steadier than ns/op on a shared machine. "timer" fires the next pending timer
// of each user that has one.
func BenchmarkHistory(b *testing.B) {
	eng := engine.New(benchPack(b), engine.Options{})
	base := enginetest.Replay(eng, historyStream(b), nil)
	keys := base.Keys()
	codec := state.NewCodec()
	page := func(path string) map[string]any {
		return map[string]any{"type": "page", "context": map[string]any{"page": map[string]any{"path": path}}}
	}
	track := func(name, path string, props map[string]any) map[string]any {
		m := map[string]any{"type": "track", "event": name, "properties": props}
		if path != "" {
			m["context"] = map[string]any{"page": map[string]any{"path": path}}
		}
		return m
	}
	cases := []struct {
		name string
		ev   map[string]any
	}{
		{"no-rule", track("Document Downloaded", "/docs", map[string]any{"document": "pricing.pdf"})},
		{"page-blog", page("/blog/how-to")},
		{"page-pricing", page("/pricing")},
		{"product-viewed", track("Product Viewed", "/products/p9", map[string]any{"product_id": "p9", "name": "Leica M6", "price": 4200.0})},
		{"product-added", track("Product Added", "", map[string]any{"product_id": "p1", "name": "Tote", "price": 40.0})},
		{"heartbeat", track("Page Heartbeat", "/blog", map[string]any{"seconds": 15.0})},
		{"scrolled", track("Page Scrolled", "/products/p2", map[string]any{"percent": 50.0})},
	}
	if eng.Pack().Reads("Document Downloaded") {
		b.Fatal("the no-rule event is read by a rule of the pack")
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			evs := make([]schema.Event, 0, len(keys))
			pristine := make([][]byte, 0, len(keys))
			for _, k := range keys {
				u, _ := codec.Clone(base.States[k])
				at := u.LastEvent.Add(time.Minute)
				for {
					due, ok := u.NextDue()
					if !ok || due.After(at) {
						break
					}
					eng.Timer(u, due)
				}
				m := c.ev
				m["userId"] = k
				m["messageId"] = "bench-" + k
				m["timestamp"] = at.Format(time.RFC3339Nano)
				raw, _ := json.Marshal(m)
				ev, err := schema.DecodeEvent(raw)
				if err != nil {
					b.Fatal(err)
				}
				evs = append(evs, ev)
				v, _ := codec.Marshal(u)
				pristine = append(pristine, v)
			}
			runOnUsers(b, eng, codec, pristine, func(u *state.User, j int) { eng.Event(u, &evs[j]) })
		})
	}
	b.Run("timer", func(b *testing.B) {
		var pristine [][]byte
		for _, k := range keys {
			if _, ok := base.States[k].NextDue(); ok {
				v, _ := codec.Marshal(base.States[k])
				pristine = append(pristine, v)
			}
		}
		b.Logf("%d of %d users have a pending timer", len(pristine), len(keys))
		runOnUsers(b, eng, codec, pristine, func(u *state.User, _ int) {
			due, _ := u.NextDue()
			eng.Timer(u, due)
		})
	})
}

// runOnUsers calls step b.N times, on the users encoded in pristine in
// turn, restoring them all (unmeasured) after each pass. A user is restored
// as the drivers load one: decoded, then reconciled with the pack.
func runOnUsers(b *testing.B, eng *engine.Engine, codec *state.Codec, pristine [][]byte, step func(u *state.User, j int)) {
	users := make([]*state.User, len(pristine))
	restore := func() {
		for i, v := range pristine {
			u, err := codec.Unmarshal(v)
			if err != nil {
				b.Fatal(err)
			}
			eng.Reconcile(u)
			users[i] = u
		}
		// The restore's garbage is collected now, not in the measured
		// part: cpu-ns/op counts the op's own work, and B/op and
		// allocs/op what it leaves the collector.
		runtime.GC()
	}
	restore()
	var cpu enginetest.CPU
	b.ReportAllocs()
	b.ResetTimer()
	cpu.Start()
	for i, j := 0, 0; i < b.N; i, j = i+1, j+1 {
		if j == len(users) {
			b.StopTimer()
			cpu.Stop()
			restore()
			cpu.Start()
			b.StartTimer()
			j = 0
		}
		step(users[j], j)
	}
	b.StopTimer()
	cpu.Report(b)
}

// BenchmarkReplay measures the engine over the whole history stream, in
// event-time order, from fresh users, as the drivers see it: an op is one
// event with the timers of its user that came due before it.
func BenchmarkReplay(b *testing.B) {
	eng := engine.New(benchPack(b), engine.Options{})
	evs := historyStream(b)
	p := enginetest.NewPlayer(eng)
	var cpu enginetest.CPU
	b.ReportAllocs()
	b.ResetTimer()
	cpu.Start()
	for i, j := 0, 0; i < b.N; i, j = i+1, j+1 {
		if j == len(evs) {
			p, j = enginetest.NewPlayer(eng), 0
		}
		p.Apply(&evs[j], nil)
	}
	b.StopTimer()
	cpu.Report(b)
}
