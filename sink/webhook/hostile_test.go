package webhook_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/internal/telemetry"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/schema/schematest"
	"github.com/microtrigger/microtrigger/sink/webhook"
)

// answers are every body a refused request may get: fixed sentences with
// positions and counts, never a byte of the request.
var answers = regexp.MustCompile(`^(POST only|body too large|cannot read body|unsigned request|bad timestamp|stale timestamp|` +
	`bad signature encoding|bad signature|cannot publish events now; retry|` +
	`webhook body is not valid UTF-8|webhook body is not valid JSON at byte \d+|webhook body ends at byte \d+ before its JSON is complete|` +
	`webhook body is not a JSON array|webhook body holds \d+ events, over \d+|` +
	`event \d+ is not a JSON object|event \d+: no event type|event \d+: no numeric timestamp|event \d+: timestamp out of range)\n$`)

// hook is a handler on the embedded broker whose logs and metrics are kept.
type hook struct {
	h    *webhook.Handler
	key  *ecdsa.PrivateKey
	logs *schematest.Buffer
	tel  *telemetry.Telemetry
}

// newHook builds and runs the handler on the embedded broker of seeds,
// until the test ends; with tel nil it has no metrics.
func newHook(t testing.TB, seeds []kgo.Opt, key *ecdsa.PrivateKey, tel *telemetry.Telemetry) *hook {
	logs := &schematest.Buffer{}
	cfg := webhook.Config{
		PublicKey: &key.PublicKey, Producer: kafkatest.Client(t, seeds...), Kafka: seeds, Dir: t.TempDir(), MaxBody: 64 << 10,
		Now:    func() time.Time { return now },
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tel != nil {
		cfg.Meter = tel.MeterProvider()
	}
	h, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		h.Close()
	})
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !h.Ready() {
		select {
		case err := <-done:
			t.Fatalf("run: %v", err)
		case <-tick.C:
		}
	}
	return &hook{h: h, key: key, logs: logs, tel: tel}
}

// serve answers one request: ts "" sends no headers, sig "" signs with the
// key.
func (k *hook) serve(method string, body []byte, ts, sig string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/sendgrid/events", bytes.NewReader(body))
	if ts != "" {
		if sig == "" {
			d := sha256.Sum256(append([]byte(ts), body...))
			s, _ := ecdsa.SignASN1(rand.Reader, k.key, d[:])
			sig = base64.StdEncoding.EncodeToString(s)
		}
		req.Header.Set(webhook.HeaderTimestamp, ts)
		req.Header.Set(webhook.HeaderSignature, sig)
	}
	rec := httptest.NewRecorder()
	k.h.ServeHTTP(rec, req)
	return rec
}

func (k *hook) scrape() []byte {
	rec := httptest.NewRecorder()
	k.tel.Handler(telemetry.Probes{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.Bytes()
}

// TestHostileRequestsLeakNothing sends every kind of bad webhook request,
// a sentinel in every header, key and value it can hold: each gets its
// status, and neither the answers (bodies and headers), nor the logs, nor
// the Prometheus scrape hold a byte of the sentinel. (Published events
// carry the user id by contract.)
func TestHostileRequestsLeakNothing(t *testing.T) {
	const s = "SENTINEL-7f3a"
	email := s + "@example.com"
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, seeds := kafkatest.Cluster(t, 3)
	tel, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	k := newHook(t, seeds, key, tel)
	ts := strconv.FormatInt(now.Unix(), 10)
	entry := func(typ, user, extra string) string {
		return fmt.Sprintf(`{"email":%q,"timestamp":%d,"event":%q,"sg_event_id":"%s-%s","sg_message_id":"%s.filter","user_id":"%s",`+
			`"command_id":%q,"trigger":%q,"step":"2","template":%q,%q:%q,%q:1,"url":"https://%s.example/%s","reason":"550 <%s> %s",`+
			`"ip":%q,"useragent":%q,"category":[%q]%s}`,
			email, now.Unix(), typ, s, typ, s, user, s, s, s, s, email, email, s, s, email, s, s, s, s, extra)
	}
	good := "[" + entry("open", s+"-u", "") + "," + entry("bounce", s+"-u", `,"type":"blocked"`) + "]"
	// Its events have ids of their own: SendGrid's are unique, and an id
	// the handler has seen (even in an event it could not publish) is not
	// published again.
	good = strings.ReplaceAll(good, `"sg_event_id":"`+s+`-`, `"sg_event_id":"good-`+s+`-`)
	signedBy := func(key *ecdsa.PrivateKey, body string) string {
		d := sha256.Sum256(append([]byte(ts), body...))
		sig, _ := ecdsa.SignASN1(rand.Reader, key, d[:])
		return base64.StdEncoding.EncodeToString(sig)
	}
	for _, tc := range []struct {
		name, method, body, ts, sig string
		want                        int
	}{
		{"unsigned", "POST", good, "", "", 401},
		{"signed by another key", "POST", good, ts, signedBy(other, good), 401},
		{"signature of words", "POST", good, ts, s + "%" + email, 401},
		{"signature of the body", "POST", good, ts, base64.StdEncoding.EncodeToString([]byte(good)), 401},
		{"timestamp of words", "POST", good, s + email, "x", 401},
		{"stale", "POST", good, strconv.FormatInt(now.Add(-time.Hour).Unix(), 10), "", 401},
		{"oversized", "POST", "[" + strings.Repeat(`"`+email+`",`, 64<<10/len(email)) + "1]", ts, "", 413},
		{"not JSON", "POST", s + " " + email, ts, "", 400},
		{"an object", "POST", `{"` + s + `":"` + email + `"}`, ts, "", 400},
		{"null", "POST", `null`, ts, "", 400},
		{"bare word", "POST", "[" + entry("open", s, "") + "," + s + "]", ts, "", 400},
		{"truncated", "POST", `[{"event":"open","user_id":"` + email, ts, "", 400},
		{"invalid UTF-8", "POST", `[{"event":"open","user_id":"` + s + "\xff" + `","timestamp":1}]`, ts, "", 400},
		{"entry not an object", "POST", `["` + email + `"]`, ts, "", 400},
		{"entry without type", "POST", `[{"timestamp":1,"user_id":"` + email + `"}]`, ts, "", 400},
		{"type of words and no timestamp", "POST", `[{"event":"` + s + `","user_id":"` + email + `"}]`, ts, "", 400},
		{"timestamp of words in an entry", "POST", `[{"event":"open","timestamp":"` + s + `","user_id":"` + email + `"}]`, ts, "", 400},
		{"timestamp beyond float64", "POST", `[{"event":"open","timestamp":1e400,"user_id":"` + email + `"}]`, ts, "", 400},
		{"timestamp out of range", "POST", `[{"event":"open","timestamp":1e300,"user_id":"` + email + `"}]`, ts, "", 400},
		{"user id with a NUL", "POST", "[" + entry("open", s+`\u0000`+email, "") + "]", ts, "", 200},
		{"user id too long", "POST", "[" + entry("click", strings.Repeat(s, 30), "") + "]", ts, "", 200},
		{"type of words", "POST", "[" + entry(s, s, "") + "]", ts, "", 200},
		{"no user id", "POST", "[" + strings.Replace(entry("open", "", ""), `"user_id":"",`, "", 1) + "]", ts, "", 200},
		{"good", "POST", good, ts, "", 200},
		{"GET", "GET", good, ts, "", 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := k.serve(tc.method, []byte(tc.body), tc.ts, tc.sig)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if rec.Code != 200 && !answers.Match(rec.Body.Bytes()) {
				t.Errorf("answer %q is not one of the handler's", rec.Body)
			}
			var answer bytes.Buffer
			rec.Result().Header.Write(&answer)
			answer.Write(rec.Body.Bytes())
			if schematest.Leaked(answer.Bytes(), s) {
				t.Errorf("the answer holds the sentinel:\n%s", answer.Bytes())
			}
		})
	}
	if n := len(kafkatest.Await(t, seeds, schema.TopicEvents, 2, 10*time.Second)); n != 2 {
		t.Fatalf("%d events published, want the good two", n)
	}
	logs := k.logs.Bytes()
	if !bytes.Contains(logs, []byte("webhook event not publishable")) || !bytes.Contains(logs, []byte("webhook request refused")) {
		t.Errorf("the refusals were not logged: the check proves nothing\n%s", logs)
	}
	checkLogs(t, logs)
	if schematest.Leaked(logs, s) {
		t.Errorf("the logs hold the sentinel:\n%s", logs)
	}
	scrape := k.scrape()
	if !bytes.Contains(scrape, []byte(`result="invalid"`)) || !bytes.Contains(scrape, []byte(`code="400"`)) {
		t.Errorf("the scrape counts no refusal: the check proves nothing\n%s", scrape)
	}
	if schematest.Leaked(scrape, s) {
		t.Errorf("the metrics hold the sentinel:\n%s", scrape)
	}
}

// checkLogs fails on a log line with an attribute the handler does not
// write, or a value that is not of its own making.
func checkLogs(t testing.TB, logs []byte) {
	t.Helper()
	types := regexp.MustCompile(`^(processed|deferred|delivered|open|click|bounce|dropped|spamreport|unsubscribe|group_unsubscribe|group_resubscribe|other)$`)
	for _, line := range bytes.Split(bytes.TrimSpace(logs), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		for k, v := range rec {
			s := fmt.Sprint(v)
			ok := true
			switch k {
			case "time", "level", "remote", "code":
			case "msg":
				// Pebble's own lines are about the dedupe store's files.
				switch s {
				case "webhook request refused", "webhook event not publishable", "webhook event not recordable", "publish webhook events",
					"record published webhook events", "check webhook events against the dedupe store",
					"webhook dedupe store caught up", "webhook dedupe store expired", "expire webhook dedupe store":
				default:
					ok = strings.HasPrefix(s, "pebble: ") && !schematest.Leaked([]byte(s), "SENTINEL-7f3a")
				}
			case "topic":
				ok = s == schema.TopicEvents || s == schema.TopicSinkOutcomes
			case "records", "elapsed", "ids":
				ok = regexp.MustCompile(`^[0-9.]+[a-zµ]*$`).MatchString(s)
			case "why":
				ok = answers.MatchString(s + "\n")
			case "type":
				ok = types.MatchString(s)
			case "err":
				ok = schematest.SafeText(s) == nil
			default:
				ok = false
			}
			if !ok {
				t.Fatalf("log attribute %s=%q is not the handler's: %s", k, s, line)
			}
		}
	}
}

// FuzzRequest sends any body, signed, unsigned or badly signed, at any
// timestamp, to the handler on the embedded broker: it answers one of its
// statuses with one of its own sentences, logs only its own words, and
// never panics.
func FuzzRequest(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, seeds := kafkatest.Cluster(f, 1)
	// One handler for every input: the dedupe store it runs is too heavy
	// to open per input; each input's log lines are checked alone.
	k := newHook(f, seeds, key, nil)
	for _, s := range []string{
		`[]`, `[{"event":"open","timestamp":1772442000,"user_id":"u1","sg_event_id":"x"}]`,
		`[{"event":"click","timestamp":1772441940,"user_id":"u\u0000","url":"https://a.example/"}]`,
		`[{"event":"bounce","timestamp":1772441940,"user_id":"u","reason":"550 <a@b.c>","type":"blocked"}]`,
		`{"event":"open"}`, `[1]`, `null`, `[{"event":"open","timestamp":1e400}]`, "[\xff]", `[{"event":"open"`,
	} {
		for mode := range byte(3) {
			f.Add([]byte(s), int64(0), mode)
		}
	}
	if b, err := os.ReadFile("testdata/sendgrid_events.json"); err == nil {
		f.Add(b, int64(-60), byte(1))
	}
	f.Fuzz(func(t *testing.T, body []byte, age int64, mode byte) {
		logged := len(k.logs.Bytes())
		ts := strconv.FormatInt(now.Unix()-age, 10)
		var sig string
		switch mode % 3 {
		case 0:
			ts = ""
		case 2:
			sig = base64.StdEncoding.EncodeToString(body)
		}
		rec := k.serve(http.MethodPost, body, ts, sig)
		switch rec.Code {
		case 200:
		case 400, 401, 413:
			if !answers.Match(rec.Body.Bytes()) {
				t.Fatalf("answer %q is not one of the handler's", rec.Body)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		checkLogs(t, k.logs.Bytes()[logged:])
	})
}
