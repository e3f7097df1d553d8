package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/groupwatch"
	"github.com/microtrigger/microtrigger/internal/kafkatest"
)

// TestLogsRateLimited: a command's log passes each warning at most
// --log.max-similar times per interval, the Kafka client's lines included
// (through groupwatch, as the processor and the sink hand them over), and
// counts the rest in one line when the command ends.
func TestLogsRateLimited(t *testing.T) {
	var stderr syncBuffer
	e := &env{stderr: &stderr, maxSimilar: 2}
	log := e.logger()
	if e.logger() != log {
		t.Fatal("each call makes another logger: the counts would not be shared")
	}
	for range 5 {
		log.Warn("record a settled request in the ledger; retrying", "partition", 3)
	}
	// franz-go's own lines: a client that dials a closed port, again and
	// again.
	w := groupwatch.New(groupwatch.Config{Logger: log})
	cl := kafkatest.Client(t, append(w.Opts(), kgo.SeedBrokers(kafkatest.ClosedPort(t)))...)
	for range 10 {
		cl.Ping(context.Background())
	}
	e.flushLogs()
	out := stderr.String()
	for _, want := range []struct {
		msg string
		n   int
	}{
		{`msg="record a settled request in the ledger; retrying"`, 2},
		{`msg="unable to open connection to broker"`, 2},
		{`msg="similar log lines suppressed" message="record a settled request in the ledger; retrying" suppressed=3 interval=10s`, 1},
		{`msg="similar log lines suppressed" message="unable to open connection to broker"`, 1},
	} {
		if n := strings.Count(out, want.msg); n != want.n {
			t.Errorf("%d lines with %s, want %d:\n%s", n, want.msg, want.n, out)
		}
	}

	// No limit: every line.
	stderr = syncBuffer{}
	e = &env{stderr: &stderr, maxSimilar: 0}
	for range 5 {
		e.logger().Warn("boom")
	}
	e.flushLogs()
	if n := strings.Count(stderr.String(), "msg=boom"); n != 5 {
		t.Errorf("--log.max-similar=0: %d lines, want 5", n)
	}
}
