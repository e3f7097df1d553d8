package sink

import (
	"context"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Results counted by microtrigger_sink_sends_total.
const (
	resultDelivered = "delivered"
	resultDuplicate = "duplicate"
)

// metrics are the sink's instruments. Labels are closed sets: results,
// dead-letter reasons, and trigger names (which come from the rule pack).
// Never a user, an address or a key.
type metrics struct {
	sends         metric.Int64Counter
	dlq           metric.Int64Counter
	batch         metric.Float64Histogram
	ledgerExpired metric.Int64Counter
	expired       metric.Int64Counter
	assigned      metric.Int64UpDownCounter
	unknown       metric.Int64Counter
	late          metric.Int64Counter
	pending       atomic.Int64 // observed by microtrigger_sink_unknown_pending
	ready         metric.Int64ObservableGauge
	mp            metric.MeterProvider
}

// How unknown outcomes are settled: the labels of
// microtrigger_sink_unknown_outcomes_total.
var (
	byWebhook  = metric.WithAttributes(attribute.String("by", "webhook"), attribute.String("decision", "sent"))
	byDeadline = metric.WithAttributes(attribute.String("by", "deadline"), attribute.String("decision", "dead_letter"))
)

func newMetrics(mp metric.MeterProvider) *metrics {
	m := mp.Meter("github.com/microtrigger/microtrigger/sink")
	var x metrics
	x.sends, _ = m.Int64Counter("microtrigger_sink_sends_total",
		metric.WithDescription("Send-commands handled, by result: delivered, duplicate, or the dead-letter reason."))
	x.dlq, _ = m.Int64Counter("microtrigger_sink_dlq_total",
		metric.WithDescription("Commands written to commands-dlq, by reason."))
	// Boundaries in seconds: a poll of duplicates takes a millisecond, one
	// delivered takes SendGrid's answer, one retried waits out backoffs and
	// rate limits (minutes, within the retry budget).
	x.batch, _ = m.Float64Histogram("microtrigger_sink_batch_duration_seconds",
		metric.WithDescription("Time to handle one poll of send-commands, delivery included."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900))
	x.ledgerExpired, _ = m.Int64Counter("microtrigger_sink_ledger_expired_total",
		metric.WithDescription("Ledger entries removed after the retention period."))
	x.expired, _ = m.Int64Counter("microtrigger_sink_expired_total",
		metric.WithDescription("Send-commands read after their expires_at and dead-lettered unsent, by trigger."))
	x.assigned, _ = m.Int64UpDownCounter("microtrigger_sink_assigned_partitions",
		metric.WithDescription("send-commands partitions owned by this instance."))
	x.unknown, _ = m.Int64Counter("microtrigger_sink_unknown_outcomes_total",
		metric.WithDescription("Commands of requests whose answer never came, settled: by webhook (a SendGrid event proved them accepted; decision sent) or by deadline (none came in time; decision dead_letter)."))
	x.late, _ = m.Int64Counter("microtrigger_sink_unknown_late_evidence_total",
		metric.WithDescription("Commands dead-lettered as outcome_unknown that a SendGrid event proved accepted afterwards: the deadline is shorter than the webhook's delay."))
	_, _ = m.Int64ObservableGauge("microtrigger_sink_unknown_pending",
		metric.WithDescription("Commands of requests whose answer never came, waiting for a SendGrid event or their deadline."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(x.pending.Load())
			return nil
		}))
	x.ready, _ = m.Int64ObservableGauge("microtrigger_sink_ready",
		metric.WithDescription("1 when the sink is ready (joined, its ledger restored, Kafka answering, delivery not paused by a failure), else 0."))
	x.mp = mp
	return &x
}

// observeProbes reports readiness at each collection.
func (m *metrics) observeProbes(ready func() error) {
	_, _ = m.mp.Meter("github.com/microtrigger/microtrigger/sink").RegisterCallback(func(_ context.Context, o metric.Observer) error {
		v := int64(0)
		if ready() == nil {
			v = 1
		}
		o.ObserveInt64(m.ready, v)
		return nil
	}, m.ready)
}

func reasonAttr(r string) metric.AddOption {
	return metric.WithAttributes(attribute.String("reason", r))
}

// triggerLabel is a command's trigger as a metric label. The rule pack
// bounds the names the processor writes; anything else on the topic (a
// name no pack allows, which could hold anything) is counted as "other".
func triggerLabel(name string) string {
	if name == "" || len(name) > 128 || name[0] == '-' {
		return "other"
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return "other"
		}
	}
	return name
}

func (m *metrics) send(ctx context.Context, result string, n int) {
	if n > 0 {
		m.sends.Add(ctx, int64(n), metric.WithAttributes(attribute.String("result", result)))
	}
}
