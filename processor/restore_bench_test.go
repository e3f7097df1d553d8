package processor_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/processor/store"
	"github.com/microtrigger/microtrigger/schema"
)

// BenchmarkRestore fills the changelog with the state of 1,000,000 users,
// then measures how long a new instance takes to restore every partition
// (changelog records/s, seconds to be ready), and how long a rebalance
// takes when a second instance joins and half the partitions move to it
// (seconds until both are ready again).
func BenchmarkRestore(b *testing.B) {
	if testing.Short() {
		b.Skip("1M users")
	}
	const users, parts = 1_000_000, 12
	_, seeds := kafkatest.Cluster(b, parts)
	ctx := context.Background()
	producer := kafkatest.Client(b, append(seeds, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MaxBufferedRecords(1<<20))...)
	codec := state.NewCodec()
	keyPart := kgo.StickyKeyPartitioner(nil).ForTopic(schema.TopicEvents)
	for i := 0; i < users; i++ {
		id := fmt.Sprintf("user-%07d", i)
		u := state.New(id)
		u.Traits = map[string]any{"email": id + "@example.com", "email_opt_in": true, "timezone": "UTC"}
		u.LastEvent = t0.Add(time.Duration(i) * time.Second)
		u.LastSeen = map[string]time.Time{"page": u.LastEvent, "Product Viewed": u.LastEvent}
		u.Counts = map[string]int64{"page": 3, "Product Viewed": 1}
		u.Pages = map[string]*state.Page{"/pricing": {Views: 2, First: t0, Last: u.LastEvent}}
		v, err := codec.Marshal(u)
		if err != nil {
			b.Fatal(err)
		}
		p := int32(keyPart.Partition(&kgo.Record{Key: []byte(id)}, parts))
		producer.Produce(ctx, &kgo.Record{Topic: schema.TopicChangelog, Partition: p, Key: store.UserKey(schema.UserHash(id)), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := producer.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	awaitReady := func(ps ...*processor.Processor) time.Duration {
		start := time.Now()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			ready := true
			total := 0
			for _, p := range ps {
				n := len(p.Progress())
				ready = ready && p.Ready() && n > 0
				total += n
			}
			if ready && total == parts {
				return time.Since(start)
			}
			<-tick.C
		}
	}
	for i := 0; i < b.N; i++ {
		clock := processor.NewManualClock(t0)
		group := fmt.Sprintf("restore-%d", i)
		mk := func(txn string) processor.Config {
			c := testConfig(b, seeds, clock, b.TempDir(), txn)
			c.Group = group
			return c
		}
		a := start(b, mk(group+"-a"))
		d := awaitReady(a.p)
		b.ReportMetric(d.Seconds(), "s-restore-1M-users")
		b.ReportMetric(float64(users)/d.Seconds(), "restored-records/s")
		c := start(b, mk(group+"-b"))
		r := awaitReady(a.p, c.p)
		b.ReportMetric(r.Seconds(), "s-rebalance-until-ready")
	}
}
