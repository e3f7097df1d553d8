package sendgrid_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/sink/render"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
	"github.com/microtrigger/microtrigger/sink/sendgrid/sendgridtest"
)

const key = "SG.test-key-7Hq2xLr9.do-not-log-me"

var epoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type fixture struct {
	srv   *sendgridtest.Server
	clock *sendgridtest.Clock
	cl    *sendgrid.Client
	logs  *bytes.Buffer
}

func setup(t *testing.T, o sendgridtest.Options, tweak func(*sendgrid.Config)) *fixture {
	t.Helper()
	clock := sendgridtest.NewClock(epoch)
	o.APIKey, o.Now = key, clock.Now
	srv := sendgridtest.New(t, o)
	logs := &bytes.Buffer{}
	cfg := sendgrid.Config{
		APIKey: key, BaseURL: srv.URL, Now: clock.Now, Sleep: clock.Sleep,
		Jitter: func() float64 { return 0.5 }, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HTTPClient: &http.Client{Timeout: 2 * time.Second},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	cl, err := sendgrid.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), key) {
			t.Errorf("the API key appears in the logs")
		}
	})
	return &fixture{srv: srv, clock: clock, cl: cl, logs: logs}
}

func messages(n int, template string) []render.Message {
	out := make([]render.Message, n)
	for i := range out {
		id := fmt.Sprintf("cmd-%s-%04d", template, i)
		out[i] = render.Message{
			CommandID:  id,
			To:         render.Address{Email: fmt.Sprintf("user%d@example.com", i)},
			From:       render.Address{Email: "hello@shop.example", Name: "Shop"},
			TemplateID: "d-" + template,
			Data:       map[string]any{"n": i, "trigger": "t"},
			CustomArgs: map[string]string{"command_id": id, "user_id": fmt.Sprint("u", i), "trigger": "t", "step": "1"},
			Categories: []string{"microtrigger", template},
		}
	}
	return out
}

// journal records the calls, checks they alternate, and can fail.
type journal struct {
	mu       sync.Mutex
	inFlight map[string]bool
	log      []string
	fail     error
}

func newJournal() *journal { return &journal{inFlight: map[string]bool{}} }

func (j *journal) Attempt(_ context.Context, msgs []render.Message) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return j.fail
	}
	for _, m := range msgs {
		if j.inFlight[m.CommandID] {
			return fmt.Errorf("%s attempted twice at once", m.CommandID)
		}
		j.inFlight[m.CommandID] = true
	}
	j.log = append(j.log, fmt.Sprintf("attempt %d", len(msgs)))
	return nil
}

func (j *journal) Settle(_ context.Context, msgs []render.Message, s sendgrid.Settlement) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, m := range msgs {
		if !j.inFlight[m.CommandID] {
			return fmt.Errorf("%s settled without an attempt", m.CommandID)
		}
		delete(j.inFlight, m.CommandID)
	}
	j.log = append(j.log, fmt.Sprintf("settle %d %d", len(msgs), s))
	return nil
}

func outcomes(rs []sendgrid.Result) map[sendgrid.Outcome]int {
	out := map[sendgrid.Outcome]int{}
	for _, r := range rs {
		out[r.Outcome]++
	}
	return out
}

func TestBatchingAndBody(t *testing.T) {
	f := setup(t, sendgridtest.Options{}, nil)
	msgs := append(messages(2500, "cart"), messages(3, "vip")...)
	msgs[2500].From.Email = "vip@shop.example"
	rs, err := f.cl.Send(context.Background(), msgs, newJournal())
	if err != nil {
		t.Fatal(err)
	}
	if o := outcomes(rs); o[sendgrid.Accepted] != 2503 {
		t.Fatalf("outcomes %v", o)
	}
	reqs := f.srv.Accepted()
	var sizes []int
	for _, r := range reqs {
		sizes = append(sizes, len(r.Personalizations))
		if bytes.Contains(r.Raw, []byte(key)) {
			t.Fatal("the API key is in a request body")
		}
		if r.Header.Get("Authorization") != "Bearer "+key {
			t.Fatal("no bearer key")
		}
	}
	// cart: 1000+1000+500; vip: the first has another sender, so 1+2.
	if got := fmt.Sprint(len(reqs)); got != "5" {
		t.Fatalf("%s requests of sizes %v", got, sizes)
	}
	if d := f.srv.Duplicates(); len(d) != 0 || len(f.srv.Delivered()) != 2503 {
		t.Fatalf("delivered %d, duplicates %v", len(f.srv.Delivered()), d)
	}
	var first sendgridtest.Request
	for _, r := range reqs {
		if r.Personalizations[0].CustomArgs["command_id"] == "cmd-cart-0000" {
			first = r
		}
	}
	var r0 map[string]any
	json.Unmarshal(first.Raw, &r0)
	if r0["template_id"] != "d-cart" || fmt.Sprint(r0["categories"]) != "[microtrigger cart]" {
		t.Errorf("request %v", r0["template_id"])
	}
	p := first.Personalizations[7]
	if p.CustomArgs["command_id"] != "cmd-cart-0007" || p.CustomArgs["step"] != "1" || p.Data["n"] != 7.0 || p.To[0] != "user7@example.com" {
		t.Errorf("personalization %+v", p)
	}
}

func TestOneRequestPerMessage(t *testing.T) {
	f := setup(t, sendgridtest.Options{}, func(c *sendgrid.Config) { c.BatchSize = 1 })
	if _, err := f.cl.Send(context.Background(), messages(20, "a"), newJournal()); err != nil {
		t.Fatal(err)
	}
	if n := len(f.srv.Accepted()); n != 20 {
		t.Fatalf("%d requests", n)
	}
}

func TestRateLimitedHonoursReset(t *testing.T) {
	f := setup(t, sendgridtest.Options{}, func(c *sendgrid.Config) { c.RateLimit = -1 })
	f.srv.Script(sendgridtest.RateLimited(30*time.Second), sendgridtest.RateLimited(10*time.Second))
	j := newJournal()
	rs, err := f.cl.Send(context.Background(), messages(10, "a"), j)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Outcome != sendgrid.Accepted || rs[0].Attempts != 3 {
		t.Fatalf("result %+v", rs[0])
	}
	// Waited for each reset (30 s, then 10 s) plus half a second of jitter.
	if el := f.clock.Now().Sub(epoch); el < 40*time.Second || el > 42*time.Second {
		t.Fatalf("waited %s, slept %v", el, f.clock.Slept())
	}
	if got := strings.Join(j.log, ","); got != "attempt 10,settle 10 2,attempt 10,settle 10 2,attempt 10,settle 10 1" {
		t.Fatalf("journal %s", got)
	}
}

func TestRateLimit(t *testing.T) {
	f := setup(t, sendgridtest.Options{}, func(c *sendgrid.Config) {
		c.BatchSize, c.RateLimit, c.RateBurst, c.Concurrency = 1, 10, 1, 1
	})
	if _, err := f.cl.Send(context.Background(), messages(21, "a"), newJournal()); err != nil {
		t.Fatal(err)
	}
	// 21 requests at 10/s with a burst of 1: 2 s.
	if el := f.clock.Now().Sub(epoch); el < 1990*time.Millisecond || el > 2010*time.Millisecond {
		t.Fatalf("21 requests took %s", el)
	}
}

func TestServerErrorsBackoff(t *testing.T) {
	f := setup(t, sendgridtest.Options{}, nil)
	f.srv.Script(sendgridtest.Status(500), sendgridtest.Status(503), sendgridtest.Status(502))
	rs, err := f.cl.Send(context.Background(), messages(3, "a"), newJournal())
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Outcome != sendgrid.Accepted || rs[0].Attempts != 4 {
		t.Fatalf("result %+v", rs[0])
	}
	// Jitter 0.5 of the upper half: 0.75 s, 1.5 s, 3 s.
	if got := fmt.Sprint(f.clock.Slept()); got != "[750ms 1.5s 3s]" {
		t.Fatalf("slept %s", got)
	}
}

func TestRetriesExhausted(t *testing.T) {
	f := setup(t, sendgridtest.Options{}, func(c *sendgrid.Config) { c.MaxAttempts = 3 })
	f.srv.Script(sendgridtest.Status(500), sendgridtest.Status(500), sendgridtest.Status(503))
	rs, err := f.cl.Send(context.Background(), messages(2, "a"), newJournal())
	if err != nil {
		t.Fatal(err)
	}
	if rs[1].Outcome != sendgrid.Exhausted || rs[1].Status != 503 || !strings.Contains(rs[1].Message, "503 Service Unavailable") {
		t.Fatalf("result %+v", rs[1])
	}
	if len(f.srv.Delivered()) != 0 {
		t.Fatal("delivered")
	}
}

func TestRetryBudgetTime(t *testing.T) {
	f := setup(t, sendgridtest.Options{}, func(c *sendgrid.Config) { c.RetryBudget = time.Minute })
	f.srv.Script(sendgridtest.RateLimited(45*time.Second), sendgridtest.RateLimited(45*time.Second))
	rs, _ := f.cl.Send(context.Background(), messages(1, "a"), newJournal())
	if rs[0].Outcome != sendgrid.Exhausted || rs[0].Attempts != 2 {
		t.Fatalf("result %+v", rs[0])
	}
}

func TestBadAddressIsolated(t *testing.T) {
	f := setup(t, sendgridtest.Options{RejectDomain: "invalid.test"}, nil)
	msgs := messages(9, "a")
	msgs[5].To.Email = "ada.lovelace@invalid.test"
	rs, err := f.cl.Send(context.Background(), msgs, newJournal())
	if err != nil {
		t.Fatal(err)
	}
	if o := outcomes(rs); o[sendgrid.Accepted] != 8 || o[sendgrid.Rejected] != 1 {
		t.Fatalf("outcomes %v", o)
	}
	r := rs[5]
	if r.Outcome != sendgrid.Rejected || r.Status != 400 || !strings.Contains(r.Message, "Does not contain a valid address") {
		t.Fatalf("result %+v", r)
	}
	if strings.Contains(f.logs.String(), "ada.lovelace") || strings.Contains(r.Message, "ada.lovelace") {
		t.Fatal("an address in logs or message")
	}
	if d := f.srv.Duplicates(); len(d) != 0 {
		t.Fatalf("duplicates %v", d)
	}
}

func TestSchemaRefusal(t *testing.T) {
	f := setup(t, sendgridtest.Options{}, nil)
	msgs := messages(1, "a")
	msgs[0].From.Email = "not an address"
	rs, err := f.cl.Send(context.Background(), msgs, newJournal())
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Outcome != sendgrid.Rejected || !strings.Contains(rs[0].Message, "from.email") {
		t.Fatalf("result %+v", rs[0])
	}
}

func TestUnauthorizedStops(t *testing.T) {
	f := setup(t, sendgridtest.Options{}, func(c *sendgrid.Config) { c.APIKey = "SG.wrong-key" })
	rs, err := f.cl.Send(context.Background(), messages(3, "a"), newJournal())
	if !errors.Is(err, sendgrid.ErrUnauthorized) {
		t.Fatalf("err = %v", err)
	}
	if rs[0].Outcome != 0 {
		t.Fatalf("result %+v", rs[0])
	}
	if strings.Contains(err.Error(), "wrong-key") {
		t.Fatal("the key is in the error")
	}
}

func TestCutAndHangAreUnknown(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault sendgridtest.Fault
		sent  int
	}{
		{"cut after accept", sendgridtest.Cut(true), 1},
		{"cut before accept", sendgridtest.Cut(false), 0},
		{"timeout after accept", sendgridtest.Hang(true), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, sendgridtest.Options{}, func(c *sendgrid.Config) {
				c.HTTPClient = &http.Client{Timeout: 200 * time.Millisecond}
			})
			f.srv.Script(tc.fault)
			j := newJournal()
			rs, err := f.cl.Send(context.Background(), messages(4, "a"), j)
			if err != nil {
				t.Fatal(err)
			}
			if rs[0].Outcome != sendgrid.Unknown || rs[0].Attempts != 1 || !strings.Contains(rs[0].Message, "no answer after the request was sent") {
				t.Fatalf("result %+v", rs[0])
			}
			if f.srv.Received() != 1 {
				t.Fatalf("%d requests: retried an unknown outcome", f.srv.Received())
			}
			if got := len(f.srv.Delivered()); got != 4*tc.sent {
				t.Fatalf("delivered %d", got)
			}
			if got := strings.Join(j.log, ","); got != "attempt 4,settle 4 3" {
				t.Fatalf("journal %s", got)
			}
		})
	}
}

func TestConnectionRefusedRetried(t *testing.T) {
	f := setup(t, sendgridtest.Options{}, func(c *sendgrid.Config) { c.MaxAttempts = 3 })
	f.srv.Close()
	rs, err := f.cl.Send(context.Background(), messages(2, "a"), newJournal())
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Outcome != sendgrid.Exhausted || rs[0].Attempts != 3 {
		t.Fatalf("result %+v", rs[0])
	}
}

func TestJournalErrorStops(t *testing.T) {
	f := setup(t, sendgridtest.Options{}, nil)
	j := newJournal()
	j.fail = errors.New("changelog down")
	_, err := f.cl.Send(context.Background(), messages(2, "a"), j)
	if err == nil || f.srv.Received() != 0 {
		t.Fatalf("err %v, %d requests", err, f.srv.Received())
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	f := setup(t, sendgridtest.Options{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	f.srv.Script(sendgridtest.Fault{Kind: sendgridtest.KindStatus, Status: 500, Before: func(sendgridtest.Request) { cancel() }})
	rs, err := f.cl.Send(ctx, messages(2, "a"), newJournal())
	if !errors.Is(err, context.Canceled) || rs[0].Outcome != 0 {
		t.Fatalf("err %v, result %+v", err, rs[0])
	}
}

func TestAPIKeyNeverPrints(t *testing.T) {
	k := sendgrid.APIKey(key)
	cfg := sendgrid.Config{APIKey: k}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "key", k, "cfg", cfg)
	js, _ := json.Marshal(struct{ Key sendgrid.APIKey }{k})
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q %x", cfg, cfg, cfg, k, k, k), buf.String(), string(js)} {
		if strings.Contains(s, "do-not-log-me") {
			t.Fatalf("key printed: %s", s)
		}
	}
}
