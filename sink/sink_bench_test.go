package sink_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/sink"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
	"github.com/microtrigger/microtrigger/sink/sendgrid/sendgridtest"
)

// deliverAll runs a sink over n commands already on send-commands and
// returns how long it took until the fake SendGrid accepted them all.
func deliverAll(b *testing.B, n, batchSize int) time.Duration {
	_, seeds := kafkatest.Cluster(b, 4)
	srv := sendgridtest.New(b, sendgridtest.Options{APIKey: apiKey})
	producer := kafkatest.Client(b, seeds...)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = record(b, command(i, 500, "cart-reminder"))
	}
	kafkatest.Produce(b, producer, recs...)
	c, err := sendgrid.New(sendgrid.Config{
		APIKey: apiKey, BaseURL: srv.URL, BatchSize: batchSize, RateLimit: -1,
		HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
	})
	if err != nil {
		b.Fatal(err)
	}
	s, err := sink.New(sink.Config{
		Kafka: seeds, StateDir: b.TempDir(), Transport: sink.SendGrid(c, loadMapping(b)), Now: wallFromEpoch(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Run(ctx) }()
	actx, acancel := context.WithTimeout(ctx, 5*time.Minute)
	defer acancel()
	if err := srv.AwaitDelivered(actx, n); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if d := srv.Duplicates(); len(d) != 0 {
		b.Fatalf("duplicates: %d", len(d))
	}
	return elapsed
}

// BenchmarkDeliveryBatching measures commands per second delivered end to
// end (send-commands on the embedded broker → ledger → loopback SendGrid)
// with batching (up to 1000 personalizations per request) and with one
// request per command, in the same run, and reports the ratio.
func BenchmarkDeliveryBatching(b *testing.B) {
	const n = 3000
	var batched, single time.Duration
	for range b.N {
		batched += deliverAll(b, n, sendgrid.MaxPersonalizations)
		single += deliverAll(b, n, 1)
	}
	bps := float64(n*b.N) / batched.Seconds()
	sps := float64(n*b.N) / single.Seconds()
	b.ReportMetric(bps, "batched_cmds/s")
	b.ReportMetric(sps, "single_cmds/s")
	b.ReportMetric(bps/sps, "ratio")
}
