package processor

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/microtrigger/microtrigger/processor/store"
	"github.com/microtrigger/microtrigger/processor/task"
	"github.com/microtrigger/microtrigger/schema"
)

// metrics are the processor's instruments. Labels are bounded sets (event
// outcomes, trigger names from the pack, reasons): never a user.
type metrics struct {
	events       metric.Int64Counter
	late         metric.Int64Counter
	commands     metric.Int64Counter
	suppressions metric.Int64Counter
	timers       metric.Int64Counter
	evaluations  metric.Int64Counter
	ruleErrors   metric.Int64Counter
	evictions    metric.Int64Counter
	txns         metric.Int64Counter
	batchSeconds metric.Float64Histogram
	restored     metric.Int64Counter
	restoreSecs  metric.Float64Histogram
	assigned     metric.Int64UpDownCounter
	txnSeconds   metric.Float64Histogram
	// Per partition, observed from Progress at collection time.
	watermark, lag, caughtUp metric.Float64ObservableGauge
	consumerLag              metric.Int64ObservableGauge
	// Per partition store and for the shared block cache, observed from
	// Pebble at collection time.
	compactions, cacheHits, cacheMisses metric.Int64ObservableCounter
	readAmp, compactionDebt, diskBytes  metric.Int64ObservableGauge
	cacheBytes                          metric.Int64ObservableGauge
	ready                               metric.Int64ObservableGauge
}

func newMetrics(mp metric.MeterProvider) *metrics {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/microtrigger/microtrigger/processor")
	var x metrics
	x.events, _ = m.Int64Counter("microtrigger_processor_events_total",
		metric.WithDescription("Events read, each counted under exactly one outcome, so that their sum is the records read: "+
			"applied, duplicate, erased (a delete applied), erased_dropped (an event of an erased user), "+
			"dead_letter (with its reason), misrouted (moved to its user's partition, where it is read and counted again). "+
			"An event waiting to be ordered is counted when it is applied."))
	x.late, _ = m.Int64Counter("microtrigger_processor_late_events_total",
		metric.WithDescription("Events older than their partition's watermark, applied at once rather than in order; "+
			"each is also counted in microtrigger_processor_events_total under its outcome."))
	x.commands, _ = m.Int64Counter("microtrigger_processor_commands_total",
		metric.WithDescription("Send-commands emitted, by trigger."))
	x.suppressions, _ = m.Int64Counter("microtrigger_processor_suppressions_total",
		metric.WithDescription("Firings that sent nothing (or were deferred: quiet_hours, send_window), by trigger and reason."))
	x.timers, _ = m.Int64Counter("microtrigger_processor_timers_fired_total",
		metric.WithDescription("User timers fired."))
	x.evaluations, _ = m.Int64Counter("microtrigger_processor_rule_evaluations_total",
		metric.WithDescription("CEL conditions evaluated."))
	x.ruleErrors, _ = m.Int64Counter("microtrigger_processor_rule_errors_total",
		metric.WithDescription("CEL evaluations that failed at run time (treated as false)."))
	x.evictions, _ = m.Int64Counter("microtrigger_state_evictions_total",
		metric.WithDescription("Per-user state entries evicted to stay within bounds, by kind."))
	x.txns, _ = m.Int64Counter("microtrigger_processor_transactions_total",
		metric.WithDescription("Batches ended, by result: committed, aborted."))
	// Bucket boundaries are chosen for each quantity, in seconds:
	// OpenTelemetry's default ones (5 to 10000) are meant for milliseconds
	// and would put every batch in the first bucket. A batch takes from a
	// fraction of a millisecond (a few records) to seconds (a full poll
	// with a snapshot).
	x.batchSeconds, _ = m.Float64Histogram("microtrigger_processor_batch_duration_seconds",
		metric.WithDescription("Time to process and commit one batch."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	x.restored, _ = m.Int64Counter("microtrigger_processor_restore_records_total",
		metric.WithDescription("Changelog records applied while restoring partitions."))
	// A restore takes from a tenth of a second (a current store) to
	// minutes (a partition rebuilt from the start of its changelog).
	x.restoreSecs, _ = m.Float64Histogram("microtrigger_processor_restore_duration_seconds",
		metric.WithDescription("Time to restore one partition from the changelog."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
	// Ending a transaction flushes its records and commits (EndTxn):
	// milliseconds on a healthy cluster, seconds when a broker is slow.
	x.txnSeconds, _ = m.Float64Histogram("microtrigger_processor_transaction_duration_seconds",
		metric.WithDescription("Time to end one batch's transaction, by outcome (committed, aborted): flushing its records and committing them with the input offsets (at-least-once: flushing, then committing offsets)."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	x.assigned, _ = m.Int64UpDownCounter("microtrigger_processor_assigned_partitions",
		metric.WithDescription("Partitions currently owned by this instance."))
	x.watermark, _ = m.Float64ObservableGauge("microtrigger_processor_watermark_seconds",
		metric.WithDescription("Event-time watermark of each owned partition, as a Unix time."), metric.WithUnit("s"))
	x.lag, _ = m.Float64ObservableGauge("microtrigger_processor_event_time_lag_seconds",
		metric.WithDescription("Wall clock minus the watermark, per owned partition: how far behind event time processing is."), metric.WithUnit("s"))
	x.caughtUp, _ = m.Float64ObservableGauge("microtrigger_processor_caught_up",
		metric.WithDescription("1 when the partition has read all there is and its watermark follows the wall clock, 0 while it catches up."))
	x.consumerLag, _ = m.Int64ObservableGauge("microtrigger_processor_consumer_lag_records",
		metric.WithDescription("Records of each owned partition not yet processed: its high watermark, as the last fetch with records reported it, minus the next offset to process."),
		metric.WithUnit("{record}"))
	x.compactions, _ = m.Int64ObservableCounter("microtrigger_store_compactions_total",
		metric.WithDescription("Pebble compactions of each owned partition's store since it was opened."))
	x.compactionDebt, _ = m.Int64ObservableGauge("microtrigger_store_compaction_debt_bytes",
		metric.WithDescription("Bytes Pebble estimates it must compact in each owned partition's store to reach a stable shape."), metric.WithUnit("By"))
	x.readAmp, _ = m.Int64ObservableGauge("microtrigger_store_read_amplification",
		metric.WithDescription("Read amplification of each owned partition's store: L0 sublevels plus non-empty levels, the places a read may look."))
	x.diskBytes, _ = m.Int64ObservableGauge("microtrigger_store_disk_usage_bytes",
		metric.WithDescription("Space the files of each owned partition's store take."), metric.WithUnit("By"))
	x.cacheHits, _ = m.Int64ObservableCounter("microtrigger_store_block_cache_hits_total",
		metric.WithDescription("Lookups found in Pebble's block cache, shared by the partitions' stores; with misses, the hit rate."))
	x.cacheMisses, _ = m.Int64ObservableCounter("microtrigger_store_block_cache_misses_total",
		metric.WithDescription("Lookups not found in Pebble's block cache, which read the block from disk."))
	x.cacheBytes, _ = m.Int64ObservableGauge("microtrigger_store_block_cache_size_bytes",
		metric.WithDescription("Bytes of blocks held by Pebble's block cache."), metric.WithUnit("By"))
	x.ready, _ = m.Int64ObservableGauge("microtrigger_processor_ready",
		metric.WithDescription("1 when the instance is ready (/readyz answers 200: joined, restored, Kafka answering), else 0."))
	return &x
}

// observeProbes reports readiness at each collection.
func (m *metrics) observeProbes(mp metric.MeterProvider, ready func() error) {
	if mp == nil {
		return
	}
	_, _ = mp.Meter("github.com/microtrigger/microtrigger/processor").RegisterCallback(func(_ context.Context, o metric.Observer) error {
		v := int64(0)
		if ready() == nil {
			v = 1
		}
		o.ObserveInt64(m.ready, v)
		return nil
	}, m.ready)
}

// observeStores reports the stores' and the block cache's metrics at each
// collection.
func (m *metrics) observeStores(mp metric.MeterProvider, stores func() (map[int32]store.Metrics, store.CacheMetrics)) {
	if mp == nil {
		return
	}
	_, _ = mp.Meter("github.com/microtrigger/microtrigger/processor").RegisterCallback(func(_ context.Context, o metric.Observer) error {
		ms, cm := stores()
		if len(ms) == 0 {
			return nil // no store open: the cache serves none
		}
		for id, sm := range ms {
			at := metric.WithAttributes(attribute.Int("partition", int(id)))
			o.ObserveInt64(m.compactions, sm.Compactions, at)
			o.ObserveInt64(m.compactionDebt, int64(sm.CompactionDebt), at)
			o.ObserveInt64(m.readAmp, int64(sm.ReadAmp), at)
			o.ObserveInt64(m.diskBytes, int64(sm.DiskBytes), at)
		}
		o.ObserveInt64(m.cacheHits, cm.Hits)
		o.ObserveInt64(m.cacheMisses, cm.Misses)
		o.ObserveInt64(m.cacheBytes, cm.Bytes)
		return nil
	}, m.compactions, m.compactionDebt, m.readAmp, m.diskBytes, m.cacheHits, m.cacheMisses, m.cacheBytes)
}

// observe reports the per-partition gauges from progress, at each
// collection.
func (m *metrics) observe(mp metric.MeterProvider, progress func() map[int32]Progress, now func() time.Time) {
	if mp == nil {
		return
	}
	_, _ = mp.Meter("github.com/microtrigger/microtrigger/processor").RegisterCallback(func(_ context.Context, o metric.Observer) error {
		wall := now()
		for id, pr := range progress() {
			at := metric.WithAttributes(attribute.Int("partition", int(id)))
			if !pr.Watermark.IsZero() {
				o.ObserveFloat64(m.watermark, float64(pr.Watermark.UnixNano())/1e9, at)
				o.ObserveFloat64(m.lag, wall.Sub(pr.Watermark).Seconds(), at)
			}
			up := 0.0
			if pr.CaughtUp {
				up = 1
			}
			o.ObserveFloat64(m.caughtUp, up, at)
			if pr.HighWatermark >= 0 {
				o.ObserveInt64(m.consumerLag, max(pr.HighWatermark-pr.Committed, 0), at)
			}
		}
		return nil
	}, m.watermark, m.lag, m.caughtUp, m.consumerLag)
}

func outcome(o string) metric.MeasurementOption {
	return metric.WithAttributes(attribute.String("outcome", o))
}

func (m *metrics) record(ctx context.Context, out *task.Output) {
	st := &out.Stats
	// Each event under one outcome (task.Stats): the late ones are among
	// them, and counted apart.
	applied := st.Events - st.Duplicates - st.Erased
	if applied > 0 {
		m.events.Add(ctx, int64(applied), outcome("applied"))
	}
	if st.Late > 0 {
		m.late.Add(ctx, int64(st.Late))
	}
	if st.Duplicates > 0 {
		m.events.Add(ctx, int64(st.Duplicates), outcome("duplicate"))
	}
	if st.ErasedDropped > 0 {
		m.events.Add(ctx, int64(st.ErasedDropped), outcome("erased_dropped"))
	}
	if st.Erased > 0 {
		m.events.Add(ctx, int64(st.Erased), outcome("erased"))
	}
	if st.Timers > 0 {
		m.timers.Add(ctx, int64(st.Timers))
	}
	if st.Evaluated > 0 {
		m.evaluations.Add(ctx, int64(st.Evaluated))
	}
	if len(out.Errors) > 0 {
		m.ruleErrors.Add(ctx, int64(len(out.Errors)))
	}
	st.Evictions.Each(func(kind string, n int) {
		m.evictions.Add(ctx, int64(n), metric.WithAttributes(attribute.String("kind", kind)))
	})
	for i := range out.Commands {
		m.commands.Add(ctx, 1, metric.WithAttributes(attribute.String("trigger", out.Commands[i].Trigger)))
	}
	for i := range out.Suppressions {
		s := &out.Suppressions[i]
		m.suppressions.Add(ctx, 1, metric.WithAttributes(
			attribute.String("trigger", s.Trigger), attribute.String("reason", string(s.Reason))))
	}
}

func (m *metrics) deadLetter(ctx context.Context, r schema.Reason) {
	m.events.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "dead_letter"), attribute.String("reason", string(r))))
}
