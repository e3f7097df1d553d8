package sink_test

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink"
	"github.com/microtrigger/microtrigger/sink/sendgrid/sendgridtest"
)

// counter returns the value of the int64 counter name at the data point
// whose attribute key has value val.
func counter(t *testing.T, r *sdkmetric.ManualReader, name, key, val string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is a %T, not an int64 counter", name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				if v, ok := dp.Attributes.Value(attribute.Key(key)); ok && v.AsString() == val {
					return dp.Value
				}
			}
		}
	}
	return 0
}

// TestExpiredCommandsAreDeadLettered: the sink delivers what can still go
// out in its window (a command with expires_at, one whose send_at is ahead,
// and one written before expires_at existed) and dead-letters the rest as
// expired, unsent, with the usual dead-letter shape; the ledger remembers
// them, so a sink whose clock runs behind does not send them later.
func TestExpiredCommandsAreDeadLettered(t *testing.T) {
	h := newHarness(t, 2, sendgridtest.Options{})
	h.clock.Advance(time.Minute) // the sink reads at 09:01

	fresh := command(0, 10, "cart-reminder")
	ahead := command(1, 10, "cart-reminder")
	ahead.SendAt, ahead.ExpiresAt = epoch.Add(2*time.Hour), epoch.Add(5*time.Hour)
	legacy := command(2, 10, "cart-reminder") // mid, no expires_at: until epoch+2h
	legacy.SendAt, legacy.ExpiresAt = epoch.Add(-time.Hour), time.Time{}
	stale := command(3, 10, "cart-reminder")
	stale.SendAt, stale.ExpiresAt = epoch.Add(-4*time.Hour), epoch.Add(-time.Hour)
	staleLegacy := command(4, 10, "pricing-help") // high, no expires_at: until epoch-5m
	staleLegacy.Trigger, staleLegacy.Intent = "pricing-revisit", schema.IntentHigh
	staleLegacy.SendAt, staleLegacy.ExpiresAt = epoch.Add(-20*time.Minute), time.Time{}
	// Expired, with a template the sink lacks: expiry is decided first.
	staleUnknown := command(5, 10, "no-such-template")
	staleUnknown.SendAt, staleUnknown.ExpiresAt = epoch.Add(-2*time.Hour), epoch.Add(-time.Second)

	producer := kafkatest.Client(t, h.seeds...)
	recs := map[string]*kgo.Record{}
	var all []*kgo.Record
	for _, c := range []schema.SendCommand{fresh, ahead, legacy, stale, staleLegacy, staleUnknown} {
		r := record(t, c)
		recs[c.ID] = r
		all = append(all, r)
	}
	kafkatest.Produce(t, producer, all...) // fills in partitions and offsets

	reader := sdkmetric.NewManualReader()
	stop := h.start(sink.Config{StateDir: t.TempDir(), Transport: h.transport(nil),
		Meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	awaitCommitted(t, h.seeds, "microtrigger-sink", 30*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	got := h.srv.Delivered()
	for _, c := range []schema.SendCommand{fresh, ahead, legacy} {
		if got[c.ID] != 1 {
			t.Errorf("command %s delivered %d times, want 1", c.ID, got[c.ID])
		}
	}
	if len(got) != 3 {
		t.Errorf("%d commands delivered, want 3", len(got))
	}

	wantMsg := map[string]string{
		stale.ID:        "expired: read at 2026-03-02T09:01:00Z, 1h1m0s after its expires_at 2026-03-02T08:00:00Z (send_at 2026-03-02T05:00:00Z); not sent",
		staleLegacy.ID:  "expired: read at 2026-03-02T09:01:00Z, 6m0s after the end of its high intent window (the command has no expires_at) 2026-03-02T08:55:00Z (send_at 2026-03-02T08:40:00Z); not sent",
		staleUnknown.ID: "expired: read at 2026-03-02T09:01:00Z, 1m1s after its expires_at 2026-03-02T08:59:59Z (send_at 2026-03-02T07:00:00Z); not sent",
	}
	var ids []string
	for _, r := range kafkatest.ReadAll(t, h.seeds, schema.TopicCommandsDLQ) {
		hs := make([]schema.Header, len(r.Headers))
		for i, hd := range r.Headers {
			hs[i] = schema.Header{Key: hd.Key, Value: hd.Value}
		}
		d := schema.ParseDeadLetter(r.Key, r.Value, hs)
		c, err := schema.UnmarshalCommand(d.Value)
		if err != nil {
			t.Fatalf("dead letter holds no command: %v", err)
		}
		ids = append(ids, c.ID)
		orig := recs[c.ID]
		switch {
		case orig == nil:
			t.Errorf("dead letter of an unknown command %s", c.ID)
		case d.Reason != schema.ReasonExpired:
			t.Errorf("%s: reason %q, want expired", c.ID, d.Reason)
		case !bytes.Equal(d.Key, orig.Key) || !bytes.Equal(d.Value, orig.Value):
			t.Errorf("%s: the dead letter's key or value differs from the original record", c.ID)
		case d.Topic != schema.TopicCommands || d.Partition != orig.Partition || d.Offset != orig.Offset:
			t.Errorf("%s: from %s/%d@%d, want %s/%d@%d", c.ID, d.Topic, d.Partition, d.Offset, schema.TopicCommands, orig.Partition, orig.Offset)
		case d.Message != wantMsg[c.ID]:
			t.Errorf("%s: message\n%s\nwant\n%s", c.ID, d.Message, wantMsg[c.ID])
		}
		if strings.Contains(d.Message, "@") || strings.Contains(d.Message, "user-") {
			t.Errorf("dead-letter message names the user: %s", d.Message)
		}
	}
	want := []string{stale.ID, staleLegacy.ID, staleUnknown.ID}
	sort.Strings(ids)
	sort.Strings(want)
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("dead letters %v, want %v", ids, want)
	}

	for _, m := range []struct {
		name, key, val string
		want           int64
	}{
		{"microtrigger_sink_expired_total", "trigger", "cart-abandonment", 2},
		{"microtrigger_sink_expired_total", "trigger", "pricing-revisit", 1},
		{"microtrigger_sink_sends_total", "result", "expired", 3},
		{"microtrigger_sink_sends_total", "result", "delivered", 3},
		{"microtrigger_sink_dlq_total", "reason", "expired", 3},
	} {
		if got := counter(t, reader, m.name, m.key, m.val); got != m.want {
			t.Errorf("%s{%s=%q} = %d, want %d", m.name, m.key, m.val, got, m.want)
		}
	}

	// The same expired commands again, to a sink on an empty state
	// directory whose clock is behind theirs: the ledger, restored from
	// its changelog, says they were settled, and nothing is sent.
	before := h.srv.Received()
	var again []*kgo.Record
	for _, c := range []schema.SendCommand{stale, staleLegacy, staleUnknown} {
		again = append(again, record(t, c))
	}
	kafkatest.Produce(t, producer, again...)
	behind := func() time.Time { return epoch.Add(-3 * time.Hour) }
	stop2 := h.start(sink.Config{StateDir: t.TempDir(), Transport: h.transport(nil), Now: behind})
	awaitCommitted(t, h.seeds, "microtrigger-sink", 30*time.Second)
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	if n := h.srv.Received() - before; n != 0 {
		t.Errorf("%d requests for commands already dead-lettered as expired", n)
	}
	if n := len(kafkatest.ReadAll(t, h.seeds, schema.TopicCommandsDLQ)); n != 3 {
		t.Errorf("%d dead letters after the second sink, want still 3", n)
	}
}
