package processor_test

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/clickstream"
	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/schema"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkThroughput measures, on one embedded broker in one run, the raw
// consume rate of the events topic (records/s, no processing) and the
// processor's end-to-end rate over the same 1,000,000 events from 100,000
// users, with Kafka transactions and without; it reports both and their
// ratios. CPU is the whole process's (the embedded broker runs in it too).
func BenchmarkThroughput(b *testing.B) {
	if testing.Short() {
		b.Skip("1M events")
	}
	events := clickstream.Generate(clickstream.Config{Users: 100_000, EventsPerUser: 10, Seed: 1})
	n := len(events)
	cluster, seeds := kafkatest.Cluster(b, 12)
	ctx := context.Background()
	producer := kafkatest.Client(b, append(seeds, kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<20))...)
	start := time.Now()
	for _, e := range events {
		producer.Produce(ctx, &kgo.Record{Topic: schema.TopicEvents, Key: e.Key, Value: e.Value, Timestamp: e.Time}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := producer.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("produced %d events in %v", n, time.Since(start))

	// A first pass warms what a long-running process has warm (the heap's
	// size, compiled CEL programs, page cache); it is not measured.
	// Each pass has its own changelog, so that none restores the state an
	// earlier pass left (its events would then all be duplicates).
	pass := func(name string, atLeastOnce bool) (float64, time.Duration) {
		if err := cluster.CreateTopic(name+"-changelog", 12, map[string]string{"cleanup.policy": "compact"}); err != nil {
			b.Fatal(err)
		}
		return processAll(b, seeds, events, name, atLeastOnce)
	}
	pass("bench-warmup", true)
	for i := 0; i < b.N; i++ {
		// The fastest of three reads: the ratios below are then the least
		// flattering ones.
		raw := max(rawConsume(b, seeds, n), rawConsume(b, seeds, n), rawConsume(b, seeds, n))
		b.ReportMetric(raw, "raw-rec/s")
		eos, eosCPU := pass(fmt.Sprintf("bench-eos-%d", i), false)
		b.ReportMetric(eos, "eos-rec/s")
		b.ReportMetric(eos/raw, "eos/raw")
		b.ReportMetric(float64(eosCPU.Microseconds())/float64(n), "eos-cpu-µs/event")
		if os.Getenv("SKIPALO") != "" {
			continue
		}
		alo, _ := pass(fmt.Sprintf("bench-alo-%d", i), true)
		b.ReportMetric(alo, "alo-rec/s")
		b.ReportMetric(alo/raw, "alo/raw")
		b.ReportMetric(eos/alo, "eos/alo")
	}
}

func rawConsume(b *testing.B, seeds []kgo.Opt, n int) float64 {
	cl := kafkatest.Client(b, append(seeds, kgo.ConsumeTopics(schema.TopicEvents), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(8<<20))...)
	ctx := context.Background()
	start := time.Now()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(*kgo.Record) { got++ })
	}
	d := time.Since(start)
	b.Logf("raw consume: %d records in %v", got, d)
	return float64(got) / d.Seconds()
}

// processAll runs a fresh processor (new group, empty state) over the
// topic until it has committed everything and stopped (its last snapshot
// included), and returns records/s and the process CPU time spent.
func processAll(b *testing.B, seeds []kgo.Opt, events []clickstream.Event, group string, atLeastOnce bool) (float64, time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := processor.NewManualClock(events[len(events)-1].Time)
	p, err := processor.New(processor.Config{
		Kafka: append(append([]kgo.Opt(nil), seeds...), kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(8<<20)),
		Group: group, Topics: processor.Topics{Changelog: group + "-changelog"}, Pack: loadPack(b), StateDir: b.TempDir(), Clock: clock,
		TransactionalID: group, DisableExactlyOnce: atLeastOnce, MaxPollRecords: 20000,
	})
	if err != nil {
		b.Fatal(err)
	}
	ends, err := kadm.NewClient(kafkatest.Client(b, seeds...)).ListEndOffsets(ctx, schema.TopicEvents)
	if err != nil {
		b.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { want[o.Partition] = o.Offset })
	done := make(chan error, 1)
	start, cpu0 := time.Now(), cpuTime()
	go func() { done <- p.Run(ctx) }()
	for {
		ch := p.Changed()
		prog := p.Progress()
		finished := len(prog) == len(want)
		for part, end := range want {
			if prog[part].Committed < end {
				finished = false
			}
		}
		if finished {
			break
		}
		select {
		case <-ch:
		case err := <-done:
			b.Fatalf("processor stopped: %v", err)
		}
	}
	// Until the processor has stopped: its last snapshot writes what is
	// still only in memory, so every user's state has been written once.
	cancel()
	<-done
	d, cpu := time.Since(start), cpuTime()-cpu0
	b.Logf("%s: %d events in %v (cpu %v)", group, len(events), d, cpu)
	return float64(len(events)) / d.Seconds(), cpu
}
