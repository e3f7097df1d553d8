package sink_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink"
	"github.com/microtrigger/microtrigger/sink/ledger"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
	"github.com/microtrigger/microtrigger/sink/sendgrid/sendgridtest"
)

// TestUnknownOutcomes: requests whose answer never came (a connection cut
// after the request was written, a request that hung until the client gave
// up), accepted by SendGrid or not, with SendGrid's events arriving before
// the deadline, after it, or never. Two sinks share the partitions and a
// third instance serves the webhook, so the events reach the owning sink
// through sink-outcomes. Whatever happens, no command is sent twice, and
// each is delivered or dead-lettered.
func TestUnknownOutcomes(t *testing.T) {
	const n = 40 // commands, 10 per request
	for _, tc := range []struct {
		name     string
		faults   []sendgridtest.Fault // the requests whose answer is lost
		deadline time.Duration
		// What the test does once the sinks have settled every poll.
		eventsBefore bool // SendGrid's events, before the deadline
		advance      bool // the clock passes the deadline
		eventsAfter  bool // SendGrid's events, after the deadline
		// What becomes of the commands of the lost requests.
		delivered    int // times the server accepted each
		deadLettered bool
		resolved     string // by webhook or deadline (metric)
	}{
		{name: "accepted, answers lost, events before the deadline: sent once, recorded sent",
			faults: []sendgridtest.Fault{sendgridtest.Cut(true), sendgridtest.Hang(true)}, eventsBefore: true,
			delivered: 1, resolved: "webhook"},
		{name: "not accepted, no event: dead-lettered at the deadline, never sent",
			faults: []sendgridtest.Fault{sendgridtest.Cut(false), sendgridtest.Hang(false)}, advance: true,
			deadLettered: true, resolved: "deadline"},
		{name: "accepted, no event (no webhook): dead-lettered at the deadline, sent once",
			faults: []sendgridtest.Fault{sendgridtest.Cut(true)}, advance: true,
			delivered: 1, deadLettered: true, resolved: "deadline"},
		{name: "accepted, events after the deadline: dead-lettered, counted late, not sent again",
			faults: []sendgridtest.Fault{sendgridtest.Cut(true)}, advance: true, eventsAfter: true,
			delivered: 1, deadLettered: true, resolved: "deadline"},
		{name: "no wait: dead-lettered at once",
			faults: []sendgridtest.Fault{sendgridtest.Cut(true)}, deadline: -1,
			delivered: 1, deadLettered: true, resolved: "deadline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 4, sendgridtest.Options{})
			var mu sync.Mutex
			lost := map[string]bool{}
			var script []sendgridtest.Fault
			for _, f := range tc.faults {
				f.Before = func(r sendgridtest.Request) {
					mu.Lock()
					defer mu.Unlock()
					for _, p := range r.Personalizations {
						lost[p.CustomArgs["command_id"]] = true
					}
				}
				script = append(script, f)
			}
			h.srv.Script(script...)
			hook := h.hook()
			producer := kafkatest.Client(t, h.seeds...)
			var all []string
			for i := range n {
				c := command(i, 13, "cart-reminder")
				all = append(all, c.ID)
				kafkatest.Produce(t, producer, record(t, c))
			}
			reader := sdkmetric.NewManualReader()
			meter := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			delivered := newDeliveries()
			small := func(c *sendgrid.Config) { c.BatchSize = 10; c.Concurrency = 1 }
			for range 2 {
				h.start(sink.Config{StateDir: t.TempDir(), Transport: h.transport(small), UnknownDeadline: tc.deadline,
					OnDelivered: delivered.add, Meter: meter})
			}
			awaitCommitted(t, h.seeds, "microtrigger-sink", 30*time.Second)
			mu.Lock()
			ids := make([]string, 0, len(lost))
			for id := range lost {
				ids = append(ids, id)
			}
			mu.Unlock()
			sort.Strings(ids)
			if len(ids) < len(tc.faults) {
				t.Fatalf("%d commands in requests whose answer was lost, want one at least per fault", len(ids))
			}
			// The offsets are committed: the lost ones wait in the ledger,
			// unless there is no wait.
			if tc.deadline >= 0 {
				want := map[string]ledger.State{}
				for _, id := range ids {
					want[id] = ledger.Unresolved
				}
				awaitLedger(t, h.seeds, want, 30*time.Second)
			}
			// The processor emits every command again (a replay): none is
			// sent again, the waiting ones included.
			for i := range n {
				kafkatest.Produce(t, producer, record(t, command(i, 13, "cart-reminder")))
			}
			awaitCommitted(t, h.seeds, "microtrigger-sink", 30*time.Second)
			if tc.eventsBefore {
				h.emit(hook, ids, "processed", "delivered")
			}
			if tc.advance {
				h.clock.Advance(sink.DefaultUnknownDeadline + time.Second)
			}
			final := map[string]ledger.State{}
			for _, id := range ids {
				final[id] = ledger.Sent
				if tc.deadLettered {
					final[id] = ledger.Unknown
				}
			}
			awaitLedger(t, h.seeds, final, 30*time.Second)
			if tc.eventsAfter {
				h.emit(hook, ids, "processed", "delivered", "open")
				for _, id := range ids {
					final[id] = ledger.Sent
				}
				awaitLedger(t, h.seeds, final, 30*time.Second)
			}
			if !tc.deadLettered {
				delivered.await(t, n, 30*time.Second)
			}

			// Never twice; every command delivered or dead-lettered.
			got := h.srv.Delivered()
			if d := h.srv.Duplicates(); len(d) != 0 {
				t.Errorf("sent twice: %v", d)
			}
			dlq := map[string]string{}
			for _, d := range readDLQ(t, h.seeds) {
				if d.reason != schema.ReasonOutcomeUnknown {
					t.Errorf("dead letter %s: %s", d.reason, d.msg)
				}
				if _, twice := dlq[d.id]; twice {
					t.Errorf("%s dead-lettered twice", d.id)
				}
				dlq[d.id] = d.msg
			}
			reported := delivered.counts()
			for _, id := range all {
				want, wantDead := 1, false
				if lost[id] {
					want, wantDead = tc.delivered, tc.deadLettered
				}
				if got[id] != want {
					t.Errorf("command %s accepted by SendGrid %d times, want %d", id, got[id], want)
				}
				if _, dead := dlq[id]; dead != wantDead {
					t.Errorf("command %s dead-lettered: %v, want %v", id, dead, wantDead)
				}
				if dead := dlq[id] != ""; reported[id] > 1 || dead == (reported[id] == 1) {
					t.Errorf("command %s: reported delivered %d times, dead-lettered %v: want one or the other", id, reported[id], dead)
				}
			}
			for id, msg := range dlq {
				if !strings.HasPrefix(msg, "outcome unknown: no answer after the request was sent") ||
					!strings.Contains(msg, "no SendGrid event for it arrived by its deadline") {
					t.Errorf("dead letter of %s: %s", id, msg)
				}
			}
			if v := counter(t, reader, "microtrigger_sink_unknown_outcomes_total", "by", tc.resolved); v != int64(len(ids)) {
				t.Errorf("unknown outcomes settled by %s: %d, want %d", tc.resolved, v, len(ids))
			}
			wantLate := 0
			if tc.eventsAfter {
				wantLate = len(ids)
			}
			if v := total(t, reader, "microtrigger_sink_unknown_late_evidence_total"); v != int64(wantLate) {
				t.Errorf("late evidence: %d, want %d", v, wantLate)
			}
			if t.Failed() {
				fmt.Println(h.logs.String())
			}
		})
	}
}

// total returns the sum of the int64 counter name over its data points.
func total(t *testing.T, r *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, dp := range sum.DataPoints {
					n += dp.Value
				}
			}
		}
	}
	return n
}

// TestUnknownOutcomeMovesWithItsPartition: a command waiting for its
// outcome moves with its partition to a sink on an empty state directory
// (a new node, after the first one left) that starts after the deadline
// recorded with the request; it reads the events that came while no one
// owned the partition before deciding, and settles the command as sent.
func TestUnknownOutcomeMovesWithItsPartition(t *testing.T) {
	h := newHarness(t, 2, sendgridtest.Options{})
	var mu sync.Mutex
	var lost []string
	h.srv.Script(sendgridtest.Fault{Kind: sendgridtest.KindCut, Accept: true, Before: func(r sendgridtest.Request) {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range r.Personalizations {
			lost = append(lost, p.CustomArgs["command_id"])
		}
	}})
	hook := h.hook()
	producer := kafkatest.Client(t, h.seeds...)
	var recs []*kgo.Record
	for i := range 6 {
		recs = append(recs, record(t, command(i, 6, "cart-reminder")))
	}
	kafkatest.Produce(t, producer, recs...)
	stop := h.start(sink.Config{StateDir: t.TempDir(), Transport: h.transport(nil)})
	awaitCommitted(t, h.seeds, "microtrigger-sink", 30*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]ledger.State{}
	for _, id := range lost {
		want[id] = ledger.Unresolved
	}
	before := awaitLedger(t, h.seeds, want, 30*time.Second)

	h.clock.Advance(30 * time.Minute) // within the deadline
	h.emit(hook, lost, "delivered")   // nobody owns the partitions now
	// The next sink starts after the deadline: it reads what came in the
	// meantime before it decides.
	h.clock.Advance(90 * time.Minute)
	// And the processor emits them all again (a replay): nothing is sent
	// again, the waiting ones included.
	var again []*kgo.Record
	for _, r := range recs {
		again = append(again, &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value})
	}
	kafkatest.Produce(t, producer, again...)
	delivered := newDeliveries()
	h.start(sink.Config{StateDir: t.TempDir(), Transport: h.transport(nil), OnDelivered: delivered.add})
	for _, id := range lost {
		want[id] = ledger.Sent
	}
	after := awaitLedger(t, h.seeds, want, 30*time.Second)
	delivered.await(t, len(lost), 30*time.Second)
	for _, id := range lost {
		es := before[id]
		u := es[len(es)-1]
		if inflight := es[len(es)-2]; inflight.State != ledger.InFlight || !u.At.Equal(inflight.At) ||
			!u.Deadline.Equal(inflight.At.Add(sink.DefaultUnknownDeadline)) {
			t.Errorf("%s: entries %+v: want the deadline an hour after the request", id, es)
		}
		if n := len(after[id]); n != len(es)+1 {
			t.Errorf("%s: entries %+v", id, after[id])
		}
	}
	if d := h.srv.Duplicates(); len(d) != 0 || len(h.srv.Delivered()) != 6 {
		t.Errorf("delivered %v, duplicates %v", h.srv.Delivered(), d)
	}
	if d := readDLQ(t, h.seeds); len(d) != 0 {
		t.Errorf("dead letters %v", d)
	}
}
