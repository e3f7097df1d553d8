package state_test

import (
	"os"
	"testing"

	"github.com/microtrigger/microtrigger/internal/clickstream"
	"github.com/microtrigger/microtrigger/processor/engine"
	"github.com/microtrigger/microtrigger/processor/engine/enginetest"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/state"
)

// historyStates are the states a replay of 2,000 generated users of about
// ten events each leaves with the example rule pack: the users the
// processor's throughput benchmark writes and reads.
func historyStates(b *testing.B) []*state.User {
	pack, err := rules.Load(os.DirFS("../../testdata/rules"), rules.Options{})
	if err != nil {
		b.Fatal(err)
	}
	evs, err := enginetest.Decode(clickstream.Generate(clickstream.Config{Users: 2000, EventsPerUser: 10, Seed: 1}))
	if err != nil {
		b.Fatal(err)
	}
	p := enginetest.Replay(engine.New(pack, engine.Options{}), evs, nil)
	out := make([]*state.User, 0, len(p.States))
	for _, k := range p.Keys() {
		out = append(out, p.States[k])
	}
	return out
}

// BenchmarkHistoryCodec encodes and decodes users with history, one user
// per op in turn; bytes/state is their mean encoded size, cpu-ns/op the
// process's CPU time per op.
func BenchmarkHistoryCodec(b *testing.B) {
	users := historyStates(b)
	c := state.NewCodec()
	enc := make([][]byte, len(users))
	size := 0
	for i, u := range users {
		v, err := c.Marshal(u)
		if err != nil {
			b.Fatal(err)
		}
		enc[i] = v
		size += len(v)
	}
	mean := float64(size) / float64(len(users))
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		var cpu enginetest.CPU
		cpu.Start()
		for i := 0; i < b.N; i++ {
			if _, err := c.Marshal(users[i%len(users)]); err != nil {
				b.Fatal(err)
			}
		}
		cpu.Report(b)
		b.ReportMetric(mean, "bytes/state")
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		var cpu enginetest.CPU
		cpu.Start()
		for i := 0; i < b.N; i++ {
			if _, err := c.Unmarshal(enc[i%len(users)]); err != nil {
				b.Fatal(err)
			}
		}
		cpu.Report(b)
		b.ReportMetric(mean, "bytes/state")
	})
}
