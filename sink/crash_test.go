package sink_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
	"github.com/microtrigger/microtrigger/sink/sendgrid/sendgridtest"
)

// Environment of the sink process TestCrashMidBatch starts and kills.
const (
	envChild  = "MICROTRIGGER_SINK_CRASH_CHILD"
	envBroker = "MICROTRIGGER_SINK_CRASH_BROKER"
	envURL    = "MICROTRIGGER_SINK_CRASH_URL"
	envDir    = "MICROTRIGGER_SINK_CRASH_DIR"
	envKey    = "MICROTRIGGER_SENDGRID_API_KEY"
)

// TestCrashChild is the sink process of TestCrashMidBatch: it runs a sink
// (requests of at most 10 messages, one at a time, static group membership) until
// SIGTERM. It does nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	if os.Getenv(envChild) == "" {
		t.Skip("the sink process of TestCrashMidBatch")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := sendgrid.New(sendgrid.Config{
		APIKey: sendgrid.APIKey(os.Getenv(envKey)), BaseURL: os.Getenv(envURL),
		BatchSize: 10, Concurrency: 1, RateLimit: -1, HTTPClient: &http.Client{Timeout: 10 * time.Second}, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sink.New(sink.Config{
		Kafka:     []kgo.Opt{kgo.SeedBrokers(os.Getenv(envBroker)), kgo.InstanceID("sink-0")},
		StateDir:  os.Getenv(envDir),
		Transport: sink.SendGrid(c, loadMapping(t)),
		Now:       wallFromEpoch(), // the commands are sent at epoch
		Logger:    logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCrashMidBatch kills the sink process (SIGKILL: no Kafka client
// closed, nothing flushed) while SendGrid holds its third request of a
// batch, then restarts it, on the same or an empty state directory.
//
// What the design guarantees, and this test checks: commands sent before
// the crash are not sent again; commands never attempted are sent once;
// the commands of the request in flight at the crash are dead-lettered as
// outcome_unknown and never sent again, whether SendGrid had accepted them
// (then they were delivered exactly once) or not (then they were not
// delivered, and the dead letter says so). Nothing is sent twice and
// nothing is lost without a dead letter.
func TestCrashMidBatch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		accepted bool
		emptyDir bool
	}{
		{"accepted before the crash, same state dir", true, false},
		{"not accepted before the crash, empty state dir", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cluster, seeds := kafkatest.Cluster(t, 2)
			srv := sendgridtest.New(t, sendgridtest.Options{APIKey: apiKey})
			producer := kafkatest.Client(t, seeds...)
			const n = 60
			var all []string
			for i := range n {
				c := command(i, 20, "cart-reminder")
				all = append(all, c.ID)
				kafkatest.Produce(t, producer, record(t, c))
			}

			var (
				mu    sync.Mutex
				child *exec.Cmd
				logs  bytes.Buffer
			)
			start := func(dir string) {
				cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
				cmd.Env = append(os.Environ(), envChild+"=1", envBroker+"="+cluster.ListenAddrs()[0],
					envURL+"="+srv.URL, envDir+"="+dir, envKey+"="+apiKey)
				cmd.Stdout, cmd.Stderr = &logs, &logs
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				child = cmd
				mu.Unlock()
			}
			kill := func(sig os.Signal) {
				mu.Lock()
				defer mu.Unlock()
				child.Process.Signal(sig)
				child.Wait()
			}
			var inFlight []string
			crashed := make(chan struct{})
			srv.Script(sendgridtest.Fault{}, sendgridtest.Fault{}, sendgridtest.Fault{
				Kind: sendgridtest.KindCut, Accept: tc.accepted,
				Before: func(r sendgridtest.Request) {
					for _, p := range r.Personalizations {
						inFlight = append(inFlight, p.CustomArgs["command_id"])
					}
					kill(syscall.SIGKILL)
					close(crashed)
				},
			})
			dir := t.TempDir()
			start(dir)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			select {
			case <-crashed:
			case <-ctx.Done():
				t.Fatalf("no crash:\n%s", logs.String())
			}
			if len(inFlight) == 0 || len(srv.Delivered()) == 0 {
				t.Fatalf("%d commands in flight at the crash, %d sent before: not mid-batch", len(inFlight), len(srv.Delivered()))
			}

			if tc.emptyDir {
				dir = t.TempDir()
			}
			start(dir)
			awaitCommitted(t, seeds, "microtrigger-sink", 60*time.Second)
			kill(syscall.SIGTERM)

			got := srv.Delivered()
			if d := srv.Duplicates(); len(d) != 0 {
				t.Errorf("sent twice: %v", d)
			}
			unknown := map[string]bool{}
			for _, d := range readDLQ(t, seeds) {
				if d.reason != schema.ReasonOutcomeUnknown {
					t.Errorf("dead letter %s: %s", d.reason, d.msg)
				}
				unknown[d.id] = true
			}
			for _, id := range inFlight {
				if !unknown[id] {
					t.Errorf("in-flight command %s not dead-lettered", id)
				}
			}
			if len(unknown) != len(inFlight) {
				t.Errorf("%d outcome_unknown dead letters, want %d", len(unknown), len(inFlight))
			}
			for _, id := range all {
				want := 1
				if unknown[id] && !tc.accepted {
					want = 0
				}
				if got[id] != want {
					t.Errorf("command %s delivered %d times, want %d", id, got[id], want)
				}
			}
			if strings.Contains(logs.String(), apiKey) {
				t.Error("the API key appears in the sink's logs")
			}
			if t.Failed() {
				fmt.Println(logs.String())
			}
		})
	}
}
