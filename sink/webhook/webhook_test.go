package webhook_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
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
	srv   *httptest.Server
	seeds []kgo.Opt
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
	h, err := webhook.New(webhook.Config{
		PublicKey: pub, Producer: kafkatest.Client(t, seeds...), MaxBody: maxBody,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{key: key, srv: srv, seeds: seeds}
}

func (f *fixture) post(t *testing.T, body []byte, ts time.Time, sign func(ts string, body []byte) string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL, bytes.NewReader(body))
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

	// SendGrid redelivers the same batch: nothing new is published.
	if code := f.post(t, body, now, f.sign); code != http.StatusOK {
		t.Fatalf("redelivery status %d", code)
	}
	if n := len(kafkatest.ReadAll(t, f.seeds, schema.TopicEvents)); n != 8 {
		t.Fatalf("%d events after a redelivery, want 8", n)
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
