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
// limits=small bounds the state tightly, so that eviction runs often. The
// stream is replayed a second time with every state encoded, decoded and
// reconciled before each of its inputs, as after a driver's cache miss:
// the digest must not change.
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
	var n struct{ events, timers, dup, erased, evaluated, errors int }
	sent := map[string]int{}
	suppressed := map[string]int{}
	evicted := map[string]int{}
	play := func(reload bool) ([]byte, *enginetest.Player) {
		sum := sha256.New()
		var buf []byte
		p := enginetest.NewPlayer(eng)
		if reload {
			p.Reload = func(u *state.User) *state.User {
				v, err := codec.Clone(u)
				if err != nil {
					d.Fatalf(t, "reload state: %v", err)
				}
				eng.Reconcile(v)
				return v
			}
		}
		p.Play(evs, func(s *enginetest.Step) {
			r := s.Result
			buf = buf[:0]
			buf = append(buf, s.Key...)
			if s.Event != nil {
				buf = append(buf, s.Event.MessageID...)
			} else {
				buf = binary.AppendVarint(buf, s.Due.UnixNano())
			}
			buf = binary.AppendVarint(buf, int64(r.Evaluated))
			for i := range r.Commands {
				b, err := schema.MarshalCommand(&r.Commands[i])
				if err != nil {
					d.Fatalf(t, "encode command: %v", err)
				}
				buf = append(buf, b...)
			}
			for i := range r.Suppressions {
				buf, err = schema.AppendSuppression(buf, &r.Suppressions[i])
				if err != nil {
					d.Fatalf(t, "encode suppression: %v", err)
				}
			}
			for _, e := range r.Errors {
				buf = append(buf, e.Error()...)
			}
			r.Evictions.Each(func(kind string, k int) {
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
			if reload {
				return
			}
			if s.Event != nil {
				n.events++
			} else {
				n.timers++
			}
			if r.Duplicate {
				n.dup++
			}
			if r.Erase {
				n.erased++
			}
			n.evaluated += r.Evaluated
			n.errors += len(r.Errors)
			for i := range r.Commands {
				sent[r.Commands[i].Trigger]++
			}
			for i := range r.Suppressions {
				suppressed[string(r.Suppressions[i].Reason)]++
			}
			r.Evictions.Each(func(kind string, k int) { evicted[kind] += k })
		})
		return sum.Sum(nil), p
	}
	digest, p := play(false)
	if again, _ := play(true); string(again) != string(digest) {
		t.Errorf("%s: states reloaded before every input give digest %x, not %x", d.Pos, again, digest)
	}
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
	fmt.Fprintf(&b, "digest %x\n", digest)
	return b.String()
}
