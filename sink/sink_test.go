package sink_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink"
	"github.com/microtrigger/microtrigger/sink/ledger"
	"github.com/microtrigger/microtrigger/sink/render"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
	"github.com/microtrigger/microtrigger/sink/sendgrid/sendgridtest"
	"github.com/microtrigger/microtrigger/sink/webhook"
)

const apiKey = "SG.sink-test.Zq81-never-in-logs"

var epoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// lockedBuffer collects logs from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func loadMapping(t testing.TB) *render.Mapping {
	t.Helper()
	b, err := os.ReadFile("../testdata/templates/sendgrid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := render.LoadMapping(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func templateIDs(m *render.Mapping) []string {
	var ids []string
	for _, t := range m.Templates {
		ids = append(ids, t.ID)
	}
	return ids
}

// command i of user i%users.
func command(i, users int, template string) schema.SendCommand {
	user := fmt.Sprintf("user-%03d", i%users)
	cause := fmt.Sprintf("msg-%d", i)
	return schema.SendCommand{
		ID: schema.CommandID(user, "cart-abandonment", 1, cause), UserID: user, Email: user + "@example.com",
		Trigger: "cart-abandonment", Step: 1, Template: template, Intent: schema.IntentMid,
		SendAt: epoch, ExpiresAt: epoch.Add(schema.IntentWindow(schema.IntentMid)),
		Data: map[string]any{"offer": "discount", "cart_value": 120.0}, Cause: cause,
	}
}

// wallFromEpoch is a clock that runs at the wall clock's pace from epoch,
// for sinks that run in real time over commands sent at epoch.
func wallFromEpoch() func() time.Time {
	start := time.Now()
	return func() time.Time { return epoch.Add(time.Since(start)) }
}

func record(t testing.TB, c schema.SendCommand) *kgo.Record {
	v, err := schema.MarshalCommand(&c)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: schema.TopicCommands, Key: []byte(c.UserID), Value: v}
}

// awaitCommitted waits until group has committed every send-commands
// partition up to its end.
func awaitCommitted(t testing.TB, seeds []kgo.Opt, group string, timeout time.Duration) {
	t.Helper()
	adm := kadm.NewClient(kafkatest.Client(t, seeds...))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ends, err1 := adm.ListEndOffsets(ctx, schema.TopicCommands)
		committed, err2 := adm.FetchOffsets(ctx, group)
		if err1 == nil && err2 == nil {
			done := true
			ends.Each(func(o kadm.ListedOffset) {
				c, ok := committed.Lookup(schema.TopicCommands, o.Partition)
				if o.Offset > 0 && (!ok || c.At < o.Offset) {
					done = false
				}
			})
			if done {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("group %s did not commit send-commands to its end within %s", group, timeout)
		case <-tick.C:
		}
	}
}

type dlqEntry struct {
	id     string
	reason schema.Reason
	msg    string
}

func readDLQ(t testing.TB, seeds []kgo.Opt) []dlqEntry {
	var out []dlqEntry
	for _, r := range kafkatest.ReadAll(t, seeds, schema.TopicCommandsDLQ) {
		hs := make([]schema.Header, len(r.Headers))
		for i, h := range r.Headers {
			hs[i] = schema.Header{Key: h.Key, Value: h.Value}
		}
		d := schema.ParseDeadLetter(r.Key, r.Value, hs)
		c, _ := schema.UnmarshalCommand(d.Value)
		out = append(out, dlqEntry{id: c.ID, reason: d.Reason, msg: d.Message})
		if d.Topic != schema.TopicCommands {
			t.Errorf("dead letter names topic %q", d.Topic)
		}
	}
	return out
}

// awaitLedger reads the ledger's changelog until the latest entry of each
// id in want has the state wanted, and returns every entry of those ids,
// in order.
func awaitLedger(t testing.TB, seeds []kgo.Opt, want map[string]ledger.State, timeout time.Duration) map[string][]ledger.Entry {
	t.Helper()
	cl := kafkatest.Client(t, append([]kgo.Opt{
		kgo.ConsumeTopics(schema.TopicSinkChangelog), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, seeds...)...)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got := map[string][]ledger.Entry{}
	done := func() bool {
		for id, st := range want {
			es := got[id]
			if len(es) == 0 || es[len(es)-1].State != st {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			var states []string
			for id, st := range want {
				es := got[id]
				last := "none"
				if len(es) > 0 {
					last = es[len(es)-1].State.String()
				}
				states = append(states, fmt.Sprintf("%s: %s (want %s)", id, last, st))
			}
			sort.Strings(states)
			t.Fatalf("ledger entries not reached within %s:\n%s", timeout, strings.Join(states, "\n"))
		}
		fs.EachRecord(func(r *kgo.Record) {
			id := string(r.Key)
			if _, ok := want[id]; !ok {
				return
			}
			if r.Value == nil {
				got[id] = append(got[id], ledger.Entry{})
				return
			}
			e, err := ledger.DecodeEntry(r.Value)
			if err != nil {
				t.Fatalf("changelog record %d/%d: %v", r.Partition, r.Offset, err)
			}
			got[id] = append(got[id], e)
		})
	}
	return got
}

// deliveries counts the commands a sink's OnDelivered reports.
type deliveries struct {
	mu      sync.Mutex
	n       map[string]int
	changed chan struct{}
}

func newDeliveries() *deliveries {
	return &deliveries{n: map[string]int{}, changed: make(chan struct{}, 1)}
}

func (d *deliveries) add(c schema.SendCommand) {
	d.mu.Lock()
	d.n[c.ID]++
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

func (d *deliveries) counts() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.n)
}

// await waits until n distinct commands were reported.
func (d *deliveries) await(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if got := len(d.counts()); got >= n {
			return
		}
		select {
		case <-d.changed:
		case <-deadline:
			t.Fatalf("%d commands delivered within %s, want %d", len(d.counts()), timeout, n)
		}
	}
}

type harness struct {
	t     *testing.T
	seeds []kgo.Opt
	srv   *sendgridtest.Server
	clock *sendgridtest.Clock
	logs  *lockedBuffer
	m     *render.Mapping
	// events plays SendGrid's event webhook, signing with its own key.
	events *sendgridtest.Webhook
}

func newHarness(t *testing.T, partitions int32, o sendgridtest.Options) *harness {
	_, seeds := kafkatest.Cluster(t, partitions)
	clock := sendgridtest.NewClock(epoch)
	m := loadMapping(t)
	o.APIKey, o.Now, o.Templates = apiKey, clock.Now, templateIDs(m)
	events, err := sendgridtest.NewWebhook(clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, seeds: seeds, srv: sendgridtest.New(t, o), clock: clock, logs: &lockedBuffer{}, m: m, events: events}
	t.Cleanup(func() {
		logs := h.logs.String()

		if strings.Contains(logs, apiKey) || strings.Contains(logs, "Zq81") {
			t.Errorf("the API key appears in the logs")
		}
		if strings.Contains(logs, "user-0") && strings.Contains(logs, "@example.com") {
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, "@example.com") && !strings.Contains(line, "u***@example.com") {
					t.Errorf("an unmasked address in the logs: %s", line)
				}
			}
		}
	})
	return h
}

func (h *harness) transport(tweak func(*sendgrid.Config)) sink.Transport {
	cfg := sendgrid.Config{
		APIKey: apiKey, BaseURL: h.srv.URL, Now: h.clock.Now, Sleep: h.clock.Sleep,
		// Long enough for the fake's schema check of a big request under
		// the race detector: a scripted hang, not a slow machine, makes an
		// outcome unknown.
		HTTPClient: &http.Client{Timeout: 2 * time.Second},
		Logger:     slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := sendgrid.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return sink.SendGrid(c, h.m)
}

// hook runs an instance of the webhook, as a sink pod serves it (requests
// are load-balanced over the pods, so which one gets SendGrid's events is
// no matter), until the test ends; it returns its URL once it is ready.
func (h *harness) hook() string {
	return startHook(h.t, h.seeds, h.events, h.clock.Now, h.logs)
}

func startHook(t testing.TB, seeds []kgo.Opt, events *sendgridtest.Webhook, now func() time.Time, logs io.Writer) string {
	t.Helper()
	pub, err := webhook.ParsePublicKey([]byte(events.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	hd, err := webhook.New(webhook.Config{
		PublicKey: pub, Producer: kafkatest.Client(t, seeds...), Kafka: seeds, Dir: t.TempDir(), Now: now,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hd.Run(ctx) }()
	srv := httptest.NewServer(hd)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		hd.Close()
	})
	return srv.URL
}

// emit posts, through the webhook at url, the events SendGrid would post
// for the accepted commands ids, of each type.
func (h *harness) emit(url string, ids []string, types ...string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.events.Emit(ctx, url, h.srv.Events(ids, types...)); err != nil {
		h.t.Fatal(err)
	}
}

// start runs a sink until the test ends or stop is called.
func (h *harness) start(cfg sink.Config) (stop func() error) {
	cfg.Kafka = append(cfg.Kafka, h.seeds...)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.Now == nil {
		cfg.Now = h.clock.Now
	}
	if cfg.CheckEvery == 0 {
		cfg.CheckEvery = 10 * time.Millisecond
	}
	s, err := sink.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	h.t.Cleanup(func() { stop() })
	return stop
}

func TestDeliversExactlyOnceThroughFaults(t *testing.T) {
	h := newHarness(t, 4, sendgridtest.Options{RejectDomain: "invalid.test"})
	var mu sync.Mutex
	var lost []string // commands of the requests whose answer was lost
	capture := func(f sendgridtest.Fault) sendgridtest.Fault {
		f.Before = func(r sendgridtest.Request) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range r.Personalizations {
				lost = append(lost, p.CustomArgs["command_id"])
			}
		}
		return f
	}
	h.srv.Script(
		sendgridtest.RateLimited(20*time.Second), sendgridtest.RateLimited(20*time.Second), sendgridtest.RateLimited(5*time.Second),
		sendgridtest.Status(500), sendgridtest.Status(503),
		capture(sendgridtest.Cut(true)), // accepted, answer lost
		sendgridtest.Status(502),
		capture(sendgridtest.Hang(true)), // accepted, client times out
	)
	hook := h.hook()
	producer := kafkatest.Client(t, h.seeds...)
	var good []string
	var recs []*kgo.Record
	for i := range 400 {
		c := command(i, 50, []string{"cart-reminder", "cart-incentive", "vip-cart"}[i%3])
		good = append(good, c.ID)
		recs = append(recs, record(t, c))
	}
	// A re-emitted command, a bad record, an unknown template, a refused address.
	recs = append(recs, record(t, command(7, 50, "cart-incentive")))
	recs = append(recs, &kgo.Record{Topic: schema.TopicCommands, Key: []byte("user-x"), Value: []byte(`{"id":"x","email":["ada@example.com"]}`)})
	unknownTmpl := command(1000, 50, "no-such-template")
	recs = append(recs, record(t, unknownTmpl))
	refused := command(1001, 50, "cart-reminder")
	refused.Email = "grace@invalid.test"
	recs = append(recs, record(t, refused))
	kafkatest.Produce(t, producer, recs...)

	delivered := newDeliveries()
	stop := h.start(sink.Config{
		StateDir: t.TempDir(), Transport: h.transport(nil), OnDelivered: delivered.add,
	})
	awaitCommitted(t, h.seeds, "microtrigger-sink", 30*time.Second)
	// SendGrid posts its events for every message it accepted: those of
	// the requests whose answer was lost settle them, so every good
	// command is delivered, none dead-lettered.
	mu.Lock()
	if len(lost) == 0 {
		t.Fatal("no request lost its answer")
	}
	mu.Unlock()
	h.emit(hook, nil, "processed", "delivered")
	delivered.await(t, len(good), 30*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	got := h.srv.Delivered()
	for _, id := range good {
		if got[id] != 1 {
			t.Errorf("command %s delivered %d times", id, got[id])
		}
	}
	if d := h.srv.Duplicates(); len(d) != 0 {
		t.Errorf("duplicates: %v", d)
	}
	if len(got) != len(good) {
		t.Errorf("server accepted %d commands, want %d", len(got), len(good))
	}
	reasons := map[schema.Reason][]string{}
	for _, d := range readDLQ(t, h.seeds) {
		reasons[d.reason] = append(reasons[d.reason], d.id)
		if strings.Contains(d.msg, "grace@") || strings.Contains(d.msg, "ada@") || strings.Contains(d.msg, apiKey) {
			t.Errorf("dead-letter message leaks: %s", d.msg)
		}
		if d.reason == schema.ReasonRejected && !strings.Contains(d.msg, "400 Bad Request: Does not contain a valid address") {
			t.Errorf("rejected message: %s", d.msg)
		}
	}
	if len(reasons[schema.ReasonBadCommand]) != 1 || len(reasons[schema.ReasonUnknownTemplate]) != 1 ||
		len(reasons[schema.ReasonRejected]) != 1 || reasons[schema.ReasonRejected][0] != refused.ID {
		t.Errorf("dead letters: %v", reasons)
	}
	if n := len(reasons[schema.ReasonOutcomeUnknown]); n != 0 {
		t.Errorf("%d outcome_unknown dead letters: SendGrid's events proved them accepted", n)
	}
	for _, id := range good {
		if n := delivered.counts()[id]; n != 1 {
			t.Errorf("OnDelivered called %d times for %s", n, id)
		}
	}
	// The 429s were waited out on the injected clock, not in real time.
	if h.clock.Now().Sub(epoch) < 20*time.Second {
		t.Errorf("rate-limit resets not honoured: clock moved %s", h.clock.Now().Sub(epoch))
	}

	// A second sink on an empty state directory (another node) in the same
	// group, fed the same commands again, sends nothing: the ledger moved
	// with the changelog.
	before := h.srv.Received()
	var again []*kgo.Record
	for _, r := range recs[:400] {
		again = append(again, &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value})
	}
	kafkatest.Produce(t, producer, again...)
	stop2 := h.start(sink.Config{StateDir: t.TempDir(), Transport: h.transport(nil)})
	awaitCommitted(t, h.seeds, "microtrigger-sink", 30*time.Second)
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	if h.srv.Received() != before {
		t.Errorf("re-emitted commands were sent again: %d more requests", h.srv.Received()-before)
	}
}

func TestTwoSinksShareTheWork(t *testing.T) {
	h := newHarness(t, 6, sendgridtest.Options{})
	producer := kafkatest.Client(t, h.seeds...)
	var ids []string
	produce := func(from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			c := command(i, 97, "cart-reminder")
			ids = append(ids, c.ID)
			recs = append(recs, record(t, c))
		}
		kafkatest.Produce(t, producer, recs...)
	}
	produce(0, 300)
	stopA := h.start(sink.Config{StateDir: t.TempDir(), Transport: h.transport(nil)})
	stopB := h.start(sink.Config{StateDir: t.TempDir(), Transport: h.transport(nil)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.srv.AwaitDelivered(ctx, 300); err != nil {
		t.Fatal(err)
	}
	// One leaves: the other takes its partitions over, and re-emitted
	// commands of every partition are skipped.
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	produce(300, 600)
	produce(0, 100)
	awaitCommitted(t, h.seeds, "microtrigger-sink", 30*time.Second)
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	got := h.srv.Delivered()
	if len(got) != 600 {
		t.Errorf("%d commands delivered, want 600", len(got))
	}
	if d := h.srv.Duplicates(); len(d) != 0 {
		t.Errorf("duplicates %v", d)
	}
}

func TestUnauthorizedStopsWithoutLosing(t *testing.T) {
	h := newHarness(t, 2, sendgridtest.Options{})
	producer := kafkatest.Client(t, h.seeds...)
	for i := range 5 {
		kafkatest.Produce(t, producer, record(t, command(i, 5, "cart-reminder")))
	}
	dir := t.TempDir()
	s, err := sink.New(sink.Config{Kafka: h.seeds, StateDir: dir, Now: h.clock.Now,
		Transport: h.transport(func(c *sendgrid.Config) { c.APIKey = "SG.revoked" })})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Run(ctx); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("run: %v", err)
	}
	// With the right key, everything goes out and nothing was dead-lettered.
	stop := h.start(sink.Config{StateDir: dir, Transport: h.transport(nil)})
	awaitCommitted(t, h.seeds, "microtrigger-sink", 30*time.Second)
	stop()
	if n := len(h.srv.Delivered()); n != 5 {
		t.Fatalf("%d delivered", n)
	}
	if d := readDLQ(t, h.seeds); len(d) != 0 {
		t.Fatalf("dead letters %v", d)
	}
}

func TestConsoleTransport(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 2)
	l, err := render.LoadLocal(os.DirFS("../testdata/templates"), render.Address{Email: "hello@shop.example"})
	if err != nil {
		t.Fatal(err)
	}
	producer := kafkatest.Client(t, seeds...)
	var want []string
	for i := range 6 {
		c := command(i, 3, "cart-incentive")
		want = append(want, c.ID)
		kafkatest.Produce(t, producer, record(t, c))
	}
	out := &lockedBuffer{}
	got := make(chan string, 10)
	s, err := sink.New(sink.Config{Kafka: seeds, StateDir: t.TempDir(), Transport: sink.Console(out, l), Now: wallFromEpoch(),
		OnDelivered: func(c schema.SendCommand) { got <- c.ID }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var ids []string
	for range want {
		select {
		case id := <-got:
			ids = append(ids, id)
		case <-time.After(30 * time.Second):
			t.Fatal("timed out waiting for OnDelivered")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	sort.Strings(want)
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", ids, want)
	}
	text := out.String()
	if strings.Count(text, "Subject: 10% off the items in your cart") != 6 || strings.Contains(text, "user-000@") {
		t.Fatalf("console output:\n%s", text)
	}
}

// TestIdleSinkIsReady: readiness means the ledger of the owned partitions
// is restored, so a sink with nothing to send becomes ready too.
func TestIdleSinkIsReady(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 2)
	l, err := render.LoadLocal(os.DirFS("../testdata/templates"), render.Address{Email: "hello@shop.example"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := sink.New(sink.Config{Kafka: seeds, StateDir: t.TempDir(), Transport: sink.Console(&lockedBuffer{}, l)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Ready() {
		t.Fatal("ready before it has joined")
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
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for !s.Ready() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("an idle sink never became ready")
		}
	}
}
