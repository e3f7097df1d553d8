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
	"github.com/microtrigger/microtrigger/sink/ledger"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
	"github.com/microtrigger/microtrigger/sink/sendgrid/sendgridtest"
)

// Environment of the sink process TestCrashMidBatch starts and kills.
const (
	envChild    = "MICROTRIGGER_SINK_CRASH_CHILD"
	envBroker   = "MICROTRIGGER_SINK_CRASH_BROKER"
	envURL      = "MICROTRIGGER_SINK_CRASH_URL"
	envDir      = "MICROTRIGGER_SINK_CRASH_DIR"
	envDeadline = "MICROTRIGGER_SINK_CRASH_DEADLINE"
	envKey      = "MICROTRIGGER_SENDGRID_API_KEY"
)

// TestCrashChild is the sink process of TestCrashMidBatch: it runs a sink
// (requests of at most 10 messages, one at a time, static group
// membership, the unknown-outcome deadline of the environment) until
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
	deadline, err := time.ParseDuration(os.Getenv(envDeadline))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sink.New(sink.Config{
		Kafka:           []kgo.Opt{kgo.SeedBrokers(os.Getenv(envBroker)), kgo.InstanceID("sink-0")},
		StateDir:        os.Getenv(envDir),
		Transport:       sink.SendGrid(c, loadMapping(t)),
		UnknownDeadline: deadline,
		CheckEvery:      20 * time.Millisecond,
		Now:             wallFromEpoch(), // the commands are sent at epoch
		Logger:          logger,
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
// batch, then restarts it, on the same or an empty state directory. A
// webhook instance of its own (another pod: SendGrid's requests are
// load-balanced) receives SendGrid's events, if any come.
//
// What the design guarantees, and this test checks: commands sent before
// the crash are not sent again; commands never attempted are sent once;
// the commands of the request in flight at the crash are never sent
// again: the restarted sink waits for SendGrid's events about them, from
// the request on, and records them as sent when the events come (while it
// was down, or after it restarted), or dead-letters them as
// outcome_unknown at the deadline the first run's request set, whether
// SendGrid had accepted them (then they were delivered exactly once) or
// not (then they were not delivered, and the dead letter says so).
// Nothing is sent twice and nothing is lost without a dead letter.
func TestCrashMidBatch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		accepted bool
		emptyDir bool
		// events: SendGrid's events for the in-flight commands, half of
		// them while the sink is down, half after it restarted.
		events   bool
		deadline time.Duration
	}{
		{"accepted, settled by SendGrid's events, same state dir", true, false, true, time.Hour},
		{"accepted, no event: dead-lettered at the deadline, empty state dir", true, true, false, 1500 * time.Millisecond},
		{"not accepted, no event: dead-lettered at the deadline, same state dir", false, false, false, 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cluster, seeds := kafkatest.Cluster(t, 2)
			srv := sendgridtest.New(t, sendgridtest.Options{APIKey: apiKey})
			now := wallFromEpoch()
			events, err := sendgridtest.NewWebhook(now)
			if err != nil {
				t.Fatal(err)
			}
			hookLogs := &lockedBuffer{}
			hook := startHook(t, seeds, events, now, hookLogs)
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
					envURL+"="+srv.URL, envDir+"="+dir, envKey+"="+apiKey, envDeadline+"="+tc.deadline.String())
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
			t.Cleanup(func() {
				kill(syscall.SIGKILL) // if a check stopped the test early
				if t.Failed() {
					fmt.Println(logs.String())
					fmt.Println(hookLogs.String())
				}
			})
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
			if tc.accepted {
				// The server accepts the request once Before returns: the
				// two requests before it, then this one.
				if err := srv.AwaitDelivered(ctx, 2*10+len(inFlight)); err != nil {
					t.Fatal(err)
				}
			}
			emit := func(ids []string) {
				if _, err := events.Emit(ctx, hook, srv.Events(ids, "processed", "delivered")); err != nil {
					t.Fatal(err)
				}
			}
			half := len(inFlight) / 2
			if tc.events {
				emit(inFlight[:half]) // while no sink runs
			}

			if tc.emptyDir {
				dir = t.TempDir()
			}
			start(dir)
			if tc.events {
				emit(inFlight[half:])
			}
			final := ledger.Unknown
			if tc.events {
				final = ledger.Sent
			}
			want := map[string]ledger.State{}
			for _, id := range inFlight {
				want[id] = final
			}
			entries := awaitLedger(t, seeds, want, 60*time.Second)
			awaitCommitted(t, seeds, "microtrigger-sink", 60*time.Second)
			kill(syscall.SIGTERM)

			got := srv.Delivered()
			if d := srv.Duplicates(); len(d) != 0 {
				t.Errorf("sent twice: %v", d)
			}
			unknown := map[string]string{}
			for _, d := range readDLQ(t, seeds) {
				if d.reason != schema.ReasonOutcomeUnknown {
					t.Errorf("dead letter %s: %s", d.reason, d.msg)
				}
				unknown[d.id] = d.msg
			}
			if tc.events && len(unknown) != 0 {
				t.Errorf("%d outcome_unknown dead letters, want none: SendGrid's events settled them", len(unknown))
			}
			for _, id := range inFlight {
				es := entries[id]
				if tc.events {
					continue
				}
				// The first run's request set the deadline the second run
				// kept: InFlight at t, then Unresolved until t+deadline.
				msg, ok := unknown[id]
				if !ok {
					t.Errorf("in-flight command %s not dead-lettered", id)
					continue
				}
				if len(es) != 3 || es[0].State != ledger.InFlight || es[1].State != ledger.Unresolved ||
					!es[1].At.Equal(es[0].At) || !es[1].Deadline.Equal(es[0].At.Add(tc.deadline)) {
					t.Errorf("ledger entries of %s: %+v; want InFlight at t, Unresolved until t+%s, Unknown", id, es, tc.deadline)
				} else if !strings.Contains(msg, noteFor(es[1].Deadline)) || !strings.Contains(msg, "when a run of the sink stopped") {
					t.Errorf("dead letter of %s: %q, want its deadline %s", id, msg, schema.FormatTime(es[1].Deadline))
				}
			}
			if !tc.events && len(unknown) != len(inFlight) {
				t.Errorf("%d outcome_unknown dead letters, want %d", len(unknown), len(inFlight))
			}
			for _, id := range all {
				want := 1
				if _, dead := unknown[id]; dead && !tc.accepted {
					want = 0
				}
				if got[id] != want {
					t.Errorf("command %s delivered %d times, want %d", id, got[id], want)
				}
			}
			if strings.Contains(logs.String(), apiKey) {
				t.Error("the API key appears in the sink's logs")
			}
		})
	}
}

// noteFor is how a dead letter names a deadline.
func noteFor(deadline time.Time) string {
	return "arrived by its deadline " + schema.FormatTime(deadline)
}
