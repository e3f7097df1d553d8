package webhook_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink/webhook"
)

var now = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type fixture struct {
	key   *ecdsa.PrivateKey
	pub   *ecdsa.PublicKey
	srv   *httptest.Server
	seeds []kgo.Opt
	cfg   webhook.Config
}

func setup(t *testing.T, maxBody int64) *fixture {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	// SendGrid shows the key as base64 DER.
	pub, err := webhook.ParsePublicKey([]byte(base64.StdEncoding.EncodeToString(der) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, seeds := kafkatest.Cluster(t, 3)
	f := &fixture{key: key, pub: pub, seeds: seeds}
	f.cfg = webhook.Config{PublicKey: pub, Producer: kafkatest.Client(t, seeds...), Kafka: seeds, MaxBody: maxBody,
		Now: func() time.Time { return now }}
	f.srv, _ = f.start(t, t.TempDir())
	return f
}

// start runs a handler (an instance of the webhook) on dir until the test
// ends or stop is called, and waits until it is ready.
func (f *fixture) start(t *testing.T, dir string) (srv *httptest.Server, stop func()) {
	t.Helper()
	cfg := f.cfg
	cfg.Dir = dir
	h, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	srv = httptest.NewServer(h)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Close()
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
			if err := h.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !h.Ready() {
		select {
		case err := <-done:
			t.Fatalf("run: %v", err)
		case <-tick.C:
		}
	}
	return srv, stop
}

func (f *fixture) post(t *testing.T, body []byte, ts time.Time, sign func(ts string, body []byte) string) int {
	t.Helper()
	return f.postTo(t, f.srv.URL, body, ts, sign)
}

func (f *fixture) postTo(t *testing.T, url string, body []byte, ts time.Time, sign func(ts string, body []byte) string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	tss := strconv.FormatInt(ts.Unix(), 10)
	if sign != nil {
		req.Header.Set(webhook.HeaderTimestamp, tss)
		req.Header.Set(webhook.HeaderSignature, sign(tss, body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (f *fixture) sign(ts string, body []byte) string {
	d := sha256.Sum256(append([]byte(ts), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, f.key, d[:])
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func event(typ, id, user string, extra string) string {
	s := fmt.Sprintf(`{"email":"ada@example.com","timestamp":%d,"event":%q,"sg_event_id":%q,"sg_message_id":"m1.filter","command_id":"c0ffee","trigger":"cart-abandonment","step":"2","template":"cart-incentive"`,
		now.Add(-time.Minute).Unix(), typ, id)
	if user != "" {
		s += fmt.Sprintf(`,"user_id":%q`, user)
	}
	return s + extra + "}"
}

func TestPublishesSignedEvents(t *testing.T) {
	f := setup(t, 0)
	body := []byte("[" + strings.Join([]string{
		event("processed", "e0", "u1", ""),
		event("delivered", "e1", "u1", ""),
		event("open", "e2", "u1", ""),
		event("click", "e3", "u1", `,"url":"https://shop.example/cart"`),
		event("bounce", "e4", "u2", `,"reason":"550 5.1.1 <ada@example.com>: Recipient address rejected","type":"bounce"`),
		event("dropped", "e5", "u2", `,"reason":"Bounced Address"`),
		event("spamreport", "e6", "u3", ""),
		event("unsubscribe", "e7", "u3", ""),
		event("group_unsubscribe", "e8", "u3", `,"asm_group_id":42`),
		event("deferred", "e9", "u1", ""),
		event("open", "e10", "", ""), // not ours: no user_id
	}, ",") + "]")
	if code := f.post(t, body, now, f.sign); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	recs := kafkatest.Await(t, f.seeds, schema.TopicEvents, 8, 10*time.Second)
	got := map[string]schema.Event{}
	for _, r := range recs {
		ev, err := schema.DecodeEvent(r.Value)
		if err != nil {
			t.Fatalf("published event refused by the decoder: %v\n%s", err, r.Value)
		}
		if string(r.Key) != ev.UserID {
			t.Errorf("key %q for user %q", r.Key, ev.UserID)
		}
		if strings.Contains(string(r.Value), "ada@") {
			t.Errorf("an address was published: %s", r.Value)
		}
		got[ev.MessageID] = ev
	}
	want := map[string]string{"sg:e1": "Email Delivered", "sg:e2": "Email Opened", "sg:e3": "Email Link Clicked",
		"sg:e4": "Email Bounced", "sg:e5": "Email Bounced", "sg:e6": "Unsubscribed", "sg:e7": "Unsubscribed", "sg:e8": "Unsubscribed"}
	for id, name := range want {
		if got[id].Event != name {
			t.Errorf("%s: %q, want %q", id, got[id].Event, name)
		}
	}
	click := got["sg:e3"]
	if click.Properties["url"] != "https://shop.example/cart" || click.Properties["command_id"] != "c0ffee" ||
		click.Properties["step"] != 2.0 || click.Properties["template"] != "cart-incentive" || !click.Timestamp.Equal(now.Add(-time.Minute)) {
		t.Errorf("click %+v", click)
	}
	if r := got["sg:e4"].Properties["reason"]; r != "550 5.1.1 <a***@example.com>: Recipient address rejected" {
		t.Errorf("bounce reason %q", r)
	}

	// Every attributed event, published or not, is an outcome in the
	// partition of its user's send-commands.
	outs := kafkatest.Await(t, f.seeds, schema.TopicSinkOutcomes, 10, 10*time.Second)
	byID := map[string]webhook.Outcome{}
	for _, r := range outs {
		o, err := webhook.UnmarshalOutcome(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		byID[o.ID] = o
		if p := commandsPartition(string(r.Key), 3); r.Partition != p {
			t.Errorf("outcome %s of user %s in partition %d, its send-commands are in %d", o.ID, r.Key, r.Partition, p)
		}
		if o.CommandID != "c0ffee" || strings.Contains(string(r.Value), "ada@") || !o.At.Equal(now.Add(-time.Minute)) {
			t.Errorf("outcome %s", r.Value)
		}
	}
	for i, typ := range []string{"processed", "delivered", "open", "click", "bounce", "dropped", "spamreport", "unsubscribe", "group_unsubscribe", "deferred"} {
		if o := byID[fmt.Sprintf("sg:e%d", i)]; o.Event != typ {
			t.Errorf("outcome sg:e%d: %+v, want type %s", i, o, typ)
		}
	}

	// SendGrid redelivers the same batch: nothing new is published.
	if code := f.post(t, body, now, f.sign); code != http.StatusOK {
		t.Fatalf("redelivery status %d", code)
	}
	if n := len(kafkatest.ReadAll(t, f.seeds, schema.TopicEvents)); n != 8 {
		t.Fatalf("%d events after a redelivery, want 8", n)
	}
	if n := len(kafkatest.ReadAll(t, f.seeds, schema.TopicSinkOutcomes)); n != 10 {
		t.Fatalf("%d outcomes after a redelivery, want 10", n)
	}
}

// commandsPartition is the send-commands partition of a user key: the
// processor's producer partitions by key with Kafka's default hash.
func commandsPartition(key string, partitions int) int32 {
	tp := kgo.StickyKeyPartitioner(nil).ForTopic(schema.TopicCommands)
	return int32(tp.Partition(&kgo.Record{Key: []byte(key)}, partitions))
}

// TestRedeliveryAfterRestart: SendGrid posts a request again after the
// instance that published it restarted (same volume), after it came back
// on an empty volume, or to another instance: the events are published
// once.
func TestRedeliveryAfterRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		dir  func(first string) string
		stop bool
	}{
		{"restarted, same state dir", func(first string) string { return first }, true},
		{"restarted, empty state dir", func(string) string { return t.TempDir() }, true},
		{"another instance", func(string) string { return t.TempDir() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, 0)
			first := t.TempDir()
			srv, stop := f.start(t, first)
			body := []byte("[" + event("delivered", "r1", "u1", "") + "," + event("processed", "r2", "u2", "") + "," +
				event("open", "r3", "u3", "") + "]")
			ts := now.Add(-time.Minute)
			tss := strconv.FormatInt(ts.Unix(), 10)
			sig := f.sign(tss, body)
			same := func(string, []byte) string { return sig } // the very request, replayed
			if code := f.postTo(t, srv.URL, body, ts, same); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			if tc.stop {
				stop()
			}
			again, _ := f.start(t, tc.dir(first))
			if code := f.postTo(t, again.URL, body, ts, same); code != http.StatusOK {
				t.Fatalf("replay status %d", code)
			}
			// One more event after the replay, to await: everything before
			// it has been published by then.
			marker := []byte("[" + event("click", "r4", "u4", "") + "]")
			if code := f.postTo(t, again.URL, marker, now, f.sign); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			kafkatest.Await(t, f.seeds, schema.TopicEvents, 3, 10*time.Second)
			kafkatest.Await(t, f.seeds, schema.TopicSinkOutcomes, 4, 10*time.Second)
			count := map[string]int{}
			for _, r := range kafkatest.ReadAll(t, f.seeds, schema.TopicEvents) {
				ev, _ := schema.DecodeEvent(r.Value)
				count[ev.MessageID]++
			}
			for _, r := range kafkatest.ReadAll(t, f.seeds, schema.TopicSinkOutcomes) {
				o, _ := webhook.UnmarshalOutcome(r.Value)
				count["outcome "+o.ID]++
			}
			want := map[string]int{"sg:r1": 1, "sg:r3": 1, "sg:r4": 1,
				"outcome sg:r1": 1, "outcome sg:r2": 1, "outcome sg:r3": 1, "outcome sg:r4": 1}
			if !maps.Equal(count, want) {
				t.Fatalf("published %v, want %v", count, want)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	f := setup(t, 4096)
	body := []byte("[" + event("open", "e1", "u1", "") + "]")
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name string
		body []byte
		ts   time.Time
		sign func(string, []byte) string
		want int
	}{
		{"unsigned", body, now, nil, 401},
		{"signed by another key", body, now, func(ts string, b []byte) string {
			d := sha256.Sum256(append([]byte(ts), b...))
			sig, _ := ecdsa.SignASN1(rand.Reader, other, d[:])
			return base64.StdEncoding.EncodeToString(sig)
		}, 401},
		{"body changed after signing", body, now, func(ts string, b []byte) string {
			return f.sign(ts, append(b[:len(b):len(b)], ' '))
		}, 401},
		{"trailing garbage", body, now, func(ts string, b []byte) string { return f.sign(ts, b[:len(b)-1]) }, 401},
		{"timestamp changed", body, now, func(ts string, b []byte) string { return f.sign("1"+ts, b) }, 401},
		{"stale", body, now.Add(-11 * time.Minute), f.sign, 401},
		{"from the future", body, now.Add(11 * time.Minute), f.sign, 401},
		{"not base64", body, now, func(string, []byte) string { return "%%%" }, 401},
		{"too large", append(append([]byte("["), bytes.Repeat([]byte(" "), 5000)...), ']'), now, f.sign, 413},
		{"signed but not JSON", []byte("nope"), now, f.sign, 400},
		{"good", body, now.Add(-9 * time.Minute), f.sign, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code := f.post(t, tc.body, tc.ts, tc.sign); code != tc.want {
				t.Fatalf("status %d, want %d", code, tc.want)
			}
		})
	}
	if n := len(kafkatest.ReadAll(t, f.seeds, schema.TopicEvents)); n != 1 {
		t.Fatalf("%d events published, want only the good one", n)
	}
	resp, err := http.Get(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

func TestParsePublicKey(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	if _, err := webhook.ParsePublicKey(pemKey); err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	for _, bad := range [][]byte{[]byte("not a key"), []byte(base64.StdEncoding.EncodeToString(der384)), {}} {
		if _, err := webhook.ParsePublicKey(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestParseEvents(t *testing.T) {
	for _, tc := range []struct{ body, err string }{
		{`[]`, ""},
		{`[{"event":"open","timestamp":1772442000}]`, ""},
		{`[{"event":"open","timestamp":1772442000.5}]`, ""},
		{`{"event":"open"}`, "not a JSON array"},
		{`[1]`, "not a JSON object"},
		{`[{"timestamp":1}]`, "no event type"},
		{`[{"event":"open","timestamp":"1"}]`, "no numeric timestamp"},
		{`[{"event":"open","timestamp":-1}]`, "out of range"},
		{"[{\"event\":\"open\xff\",\"timestamp\":1}]", "UTF-8"},
	} {
		_, err := webhook.ParseEvents([]byte(tc.body))
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: err %v, want %q", tc.body, err, tc.err)
		}
	}
}

// FuzzParseEvents: any body parses or is refused, never a panic; what
// parses maps to events the one validator accepts.
func FuzzParseEvents(f *testing.F) {
	for _, s := range []string{
		`[]`, `[{"event":"open","timestamp":1772442000,"user_id":"u1","sg_event_id":"x"}]`,
		`[{"event":"click","timestamp":1772442000.25,"user_id":"u","url":"https://a.example/","step":"3"}]`,
		`[{"event":"bounce","timestamp":0,"user_id":"u","reason":"550 <a@b.c>","type":"blocked"}]`,
		`[{"event":"dropped","timestamp":1,"user_id":"` + strings.Repeat("u", 300) + `"}]`,
		`[null]`, `{}`, `[{"event":"open","timestamp":1e400}]`,
	} {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile("testdata/sendgrid_events.json"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := webhook.ParseEvents(body)
		if err != nil {
			return
		}
		for i := range events {
			e := &events[i]
			if e.Type == "" || e.Timestamp.IsZero() && e.Timestamp.Unix() != 0 {
				t.Fatalf("bad event %+v", e)
			}
			ev := webhook.ToSegment(e, "Email Opened", "sg:x", "u1")
			if ev.Type != schema.TypeTrack || ev.UserID != "u1" {
				t.Fatalf("segment event %+v", ev)
			}
		}
	})
}

// FuzzUnmarshalOutcome: any record value decodes or is refused, never a
// panic; what decodes encodes back to the same outcome.
func FuzzUnmarshalOutcome(f *testing.F) {
	for _, s := range []string{
		`{"id":"sg:e1","event":"processed","command_id":"c0ffee","at":"2026-03-02T09:00:00Z"}`,
		`{"id":"sg:sha256:00","event":"open","at":"2026-03-02T09:00:00.5Z"}`,
		`{"id":"","event":"open"}`, `{"id":"x","event":""}`, `[]`, `null`, `{"id":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := webhook.UnmarshalOutcome(b)
		if err != nil {
			return
		}
		v, err := webhook.MarshalOutcome(&o)
		if err != nil {
			t.Fatalf("%s decoded to %+v, which does not encode: %v", b, o, err)
		}
		again, err := webhook.UnmarshalOutcome(v)
		if err != nil || again.ID != o.ID || again.Event != o.Event || again.CommandID != o.CommandID || !again.At.Equal(o.At) {
			t.Fatalf("%s: %+v, then %+v (%v)", b, o, again, err)
		}
	})
}
