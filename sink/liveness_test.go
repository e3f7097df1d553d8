package sink_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/sink"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
	"github.com/microtrigger/microtrigger/sink/sendgrid/sendgridtest"
)

// TestLivenessReportsAStuckLoop holds a SendGrid request in the fake
// server, so that the delivery loop cannot come round: Liveness is nil
// until the clock has moved past StuckAfter since the attempt began, then
// says the loop is stuck; once the request is answered, the loop comes
// round and Liveness is nil again.
func TestLivenessReportsAStuckLoop(t *testing.T) {
	h := newHarness(t, 1, sendgridtest.Options{})
	held, release := make(chan struct{}), make(chan struct{})
	h.srv.Script(sendgridtest.Fault{Kind: sendgridtest.KindStatus, Status: http.StatusAccepted,
		Before: func(sendgridtest.Request) { close(held); <-release }})
	s, err := sink.New(sink.Config{Kafka: h.seeds, StateDir: t.TempDir(), Now: h.clock.Now, CheckEvery: 10 * time.Millisecond,
		StuckAfter: time.Minute, Transport: h.transport(func(c *sendgrid.Config) { c.HTTPClient = &http.Client{Timeout: time.Minute} })})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	kafkatest.Produce(t, kafkatest.Client(t, h.seeds...), record(t, command(0, 1, "cart-reminder")))
	<-held
	if err := s.Liveness(); err != nil {
		t.Errorf("liveness within StuckAfter: %v", err)
	}
	h.clock.Advance(90 * time.Second)
	if err := s.Liveness(); err == nil || !strings.Contains(err.Error(), "stuck: the delivery loop has not come round for 1m30s") {
		t.Errorf("liveness with a request held for 90s: %v", err)
	}
	close(release)
	kafkatest.Eventually(t, time.Minute, "alive once SendGrid answers", func() bool { return s.Liveness() == nil })
}
