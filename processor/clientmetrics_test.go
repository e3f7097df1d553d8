package processor_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/internal/telemetry"
	"github.com/microtrigger/microtrigger/internal/telemetry/telemetrytest"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/schema"
)

// TestClientAndStoreMetrics runs a processor with franz-go's kprom hooks
// and plays events through it: the scrape then has the group client's
// metrics under microtrigger_processor_ with labels bounded by the brokers
// and topics, a consumer lag of zero on every owned partition once it has
// committed everything, the transactions' duration, and each partition
// store's Pebble metrics with those of the shared block cache.
func TestClientAndStoreMetrics(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 4)
	tel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	clock := processor.NewManualClock(t0.Add(-time.Hour))
	cfg := testConfig(t, seeds, clock, t.TempDir(), "client-metrics")
	cfg.Meter = tel.MeterProvider()
	cfg.Hooks = tel.KafkaHooks("processor")
	in := start(t, cfg)
	sim := &processor.Simulation{Processors: []*processor.Processor{in.p}, Clock: clock, Producer: kafkatest.Client(t, seeds...), Topic: schema.TopicEvents}
	ctx := context.Background()
	if err := sim.Play(ctx, append(identities(t, 0, 40, 0), page(t, 0, "u001", "/pricing"), page(t, 3*time.Minute, "u001", "/pricing"))); err != nil {
		t.Fatal(err)
	}
	if err := sim.Advance(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := len(commandsFor(t, seeds, "u001")); n != 1 {
		t.Fatalf("%d commands for u001, want 1", n)
	}
	mfs := telemetrytest.Gather(t, tel.Gatherer())

	// kprom: records fetched from events, produced to send-commands.
	bytopic := func(name string) map[string]float64 {
		out := map[string]float64{}
		for _, m := range mfs[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "topic" && l.GetName() != "node_id" {
					t.Errorf("%s: label %s: kprom's labels are node_id and topic", name, l.GetName())
				}
				if l.GetName() == "topic" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
		return out
	}
	if got := bytopic("microtrigger_processor_fetch_records_total"); got[schema.TopicEvents] < 42 {
		t.Errorf("records fetched by topic %v, want at least 42 from %s", got, schema.TopicEvents)
	}
	if got := bytopic("microtrigger_processor_produce_records_total"); got[schema.TopicCommands] < 1 {
		t.Errorf("records produced by topic %v, want the send-command", got)
	}
	for _, name := range []string{"microtrigger_processor_connects_total", "microtrigger_processor_read_bytes_total",
		"microtrigger_processor_buffered_fetch_records", "microtrigger_processor_buffered_produce_records"} {
		if mfs[name] == nil {
			t.Errorf("no %s in the scrape", name)
		}
	}

	// Lag: zero on every partition, since every record is committed.
	owned := in.p.Progress()
	lag := perPartition(mfs["microtrigger_processor_consumer_lag_records"])
	if len(lag) != len(owned) || len(owned) != 4 {
		t.Errorf("consumer lag on partitions %v, the processor owns %d", lag, len(owned))
	}
	for id, pr := range owned {
		if v, ok := lag[id]; !ok || v != 0 || pr.HighWatermark != pr.Committed {
			t.Errorf("partition %d: lag %v (reported %v), high watermark %d, committed %d", id, v, ok, pr.HighWatermark, pr.Committed)
		}
	}

	// Transactions: each committed one timed.
	var txns, timed uint64
	for _, m := range mfs["microtrigger_processor_transactions_total"].GetMetric() {
		if label(m, "outcome") == "committed" {
			txns += uint64(m.GetCounter().GetValue())
		}
	}
	for _, m := range mfs["microtrigger_processor_transaction_duration_seconds"].GetMetric() {
		if label(m, "outcome") == "committed" {
			timed += m.GetHistogram().GetSampleCount()
		}
	}
	if txns == 0 || timed != txns {
		t.Errorf("%d transactions committed, %d timed", txns, timed)
	}

	// Pebble: every owned partition's store, and the cache once.
	for _, name := range []string{"microtrigger_store_compactions_total", "microtrigger_store_read_amplification",
		"microtrigger_store_disk_usage_bytes", "microtrigger_store_compaction_debt_bytes"} {
		if got := perPartition(mfs[name]); len(got) != len(owned) {
			t.Errorf("%s on partitions %v, want the %d owned", name, got, len(owned))
		}
	}
	if d := perPartition(mfs["microtrigger_store_disk_usage_bytes"]); d[0] <= 0 {
		t.Errorf("partition 0's store takes %v bytes", d[0])
	}
	for _, name := range []string{"microtrigger_store_block_cache_hits_total", "microtrigger_store_block_cache_misses_total", "microtrigger_store_block_cache_size_bytes"} {
		if mf := mfs[name]; mf == nil || len(mf.GetMetric()) != 1 {
			t.Errorf("%s: want one series, got %v", name, mf)
		}
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// perPartition returns a gauge's or counter's value by its partition label.
func perPartition(mf *dto.MetricFamily) map[int32]float64 {
	out := map[int32]float64{}
	for _, m := range mf.GetMetric() {
		id, err := strconv.Atoi(label(m, "partition"))
		if err != nil {
			continue
		}
		v := m.GetGauge().GetValue()
		if m.GetCounter() != nil {
			v = m.GetCounter().GetValue()
		}
		out[int32(id)] = v
	}
	return out
}
