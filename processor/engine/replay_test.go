package engine_test

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/microtrigger/microtrigger/internal/clickstream"
	"github.com/microtrigger/microtrigger/processor/engine"
	"github.com/microtrigger/microtrigger/processor/engine/enginetest"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/schema"
)

// replay runs a generated clickstream through the example rule pack
// (testdata/rules at the top of the repository) and prints what came out,
// with a digest of every send-command, suppression, rule error, eviction
// count and encoded state after every input. A change to the engine or to
// the state encoding that alters any of those bytes changes the digest:
// live and replay would then disagree with what earlier builds stored.
//
//	replay users=N events=N seed=N [limits=small]
//
// limits=small bounds the state tightly, so that eviction runs often.
func (h *harness) replay(t *testing.T, d *datadriven.TestData) string {
	var users, events int
	var seed uint64
	d.ScanArgs(t, "users", &users)
	d.ScanArgs(t, "events", &events)
	d.ScanArgs(t, "seed", &seed)
	var opts engine.Options
	var limits string
	if d.MaybeScanArgs(t, "limits", &limits) {
		if limits != "small" {
			d.Fatalf(t, "limits=%s: only small is known", limits)
		}
		opts.Limits = state.Limits{Pages: 3, EventKeys: 4, Elements: 1, Session: 1, CartItems: 1,
			AggEntry: 2, SeenIDs: 5, Sends: 1, Traits: 2}
	}
	pack, err := rules.Load(os.DirFS("../../testdata/rules"), rules.Options{})
	if err != nil {
		d.Fatalf(t, "load the example pack: %v", err)
	}
	eng := engine.New(pack, opts)
	evs, err := enginetest.Decode(clickstream.Generate(clickstream.Config{Users: users, EventsPerUser: events, Seed: seed}))
	if err != nil {
		d.Fatalf(t, "%v", err)
	}
	codec := state.NewCodec()
	sum := sha256.New()
	var n struct{ events, timers, dup, erased, evaluated, errors int }
	sent := map[string]int{}
	suppressed := map[string]int{}
	evicted := map[string]int{}
	var buf []byte
	p := enginetest.Replay(eng, evs, func(s *enginetest.Step) {
		r := s.Result
		buf = buf[:0]
		buf = append(buf, s.Key...)
		if s.Event != nil {
			n.events++
			buf = append(buf, s.Event.MessageID...)
		} else {
			n.timers++
			buf = binary.AppendVarint(buf, s.Due.UnixNano())
		}
		if r.Duplicate {
			n.dup++
		}
		if r.Erase {
			n.erased++
		}
		n.evaluated += r.Evaluated
		buf = binary.AppendVarint(buf, int64(r.Evaluated))
		for i := range r.Commands {
			c := &r.Commands[i]
			sent[c.Trigger]++
			b, err := schema.MarshalCommand(c)
			if err != nil {
				d.Fatalf(t, "encode command: %v", err)
			}
			buf = append(buf, b...)
		}
		for i := range r.Suppressions {
			sp := &r.Suppressions[i]
			suppressed[string(sp.Reason)]++
			buf, err = schema.AppendSuppression(buf, sp)
			if err != nil {
				d.Fatalf(t, "encode suppression: %v", err)
			}
		}
		for _, e := range r.Errors {
			n.errors++
			buf = append(buf, e.Error()...)
		}
		r.Evictions.Each(func(kind string, k int) {
			evicted[kind] += k
			buf = append(buf, kind...)
			buf = binary.AppendVarint(buf, int64(k))
		})
		if s.User != nil {
			b, err := codec.Marshal(s.User)
			if err != nil {
				d.Fatalf(t, "encode state: %v", err)
			}
			buf = append(buf, b...)
		}
		sum.Write(binary.AppendUvarint(nil, uint64(len(buf))))
		sum.Write(buf)
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%d events, %d timer firings, %d duplicates, %d erased, %d users left\n",
		n.events, n.timers, n.dup, n.erased, len(p.States))
	fmt.Fprintf(&b, "%d conditions evaluated, %d rule errors\n", n.evaluated, n.errors)
	counts := func(what string, m map[string]int) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s %s: %d\n", what, k, m[k])
		}
	}
	counts("sent", sent)
	counts("suppressed", suppressed)
	counts("evicted", evicted)
	fmt.Fprintf(&b, "digest %x\n", sum.Sum(nil))
	return b.String()
}
