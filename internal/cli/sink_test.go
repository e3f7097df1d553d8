package cli

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
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink/sendgrid/sendgridtest"
	"github.com/microtrigger/microtrigger/sink/webhook"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func assets() Assets { return Assets{Templates: os.DirFS("../../testdata/templates")} }

func TestSinkUsage(t *testing.T) {
	t.Setenv(envSendGridKey, "")
	dir := t.TempDir()
	base := []string{"sink", "--brokers", "127.0.0.1:1", "--state-dir", dir, "--metrics.listen", ""}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--transport", "sendgrid"}, "needs --sendgrid.templates"},
		{[]string{"--transport", "sendgrid", "--sendgrid.templates", "../../testdata/templates/sendgrid.yaml"}, "no SendGrid API key"},
		{[]string{"--sendgrid.api-key", "SG.secret"}, "unknown long flag '--sendgrid.api-key'"},
		{[]string{"--transport", "pigeon"}, "enum value must be one of"},
		{[]string{"--webhook.listen", "127.0.0.1:0"}, "needs --webhook.public-key-file"},
	} {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append(append([]string{}, base...), tc.args...), &out, &errb, assets())
		if code != ExitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSinkCommand runs `microtrigger sink --transport sendgrid` against
// the embedded broker and the fake SendGrid API, with the key from the
// environment, and posts a signed webhook request to it.
func TestSinkCommand(t *testing.T) {
	const key = "SG.cli-test.Kq-never-printed"
	t.Setenv(envSendGridKey, key)
	cluster, seeds := kafkatest.Cluster(t, 2)
	srv := sendgridtest.New(t, sendgridtest.Options{APIKey: key})
	producer := kafkatest.Client(t, seeds...)
	for i := range 10 {
		user := fmt.Sprintf("user-%d", i)
		c := schema.SendCommand{ID: schema.CommandID(user, "pricing-revisit", 1, "m"), UserID: user, Email: user + "@example.com",
			Trigger: "pricing-revisit", Step: 1, Template: "pricing-help", SendAt: time.Now().UTC(), Cause: "m"}
		v, _ := schema.MarshalCommand(&c)
		kafkatest.Produce(t, producer, &kgo.Record{Topic: schema.TopicCommands, Key: []byte(user), Value: v})
	}
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	keyFile := filepath.Join(t.TempDir(), "webhook.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	hook := freePort(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"--log.level", "debug", "sink", "--brokers", cluster.ListenAddrs()[0],
			"--state-dir", t.TempDir(), "--transport", "sendgrid", "--sendgrid.templates", "../../testdata/templates/sendgrid.yaml",
			"--sendgrid.url", srv.URL, "--webhook.listen", hook, "--webhook.public-key-file", keyFile, "--metrics.listen", ""},
			&stdout, &stderr, assets())
	}()
	actx, acancel := context.WithTimeout(ctx, 30*time.Second)
	defer acancel()
	if err := srv.AwaitDelivered(actx, 10); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	req := srv.Accepted()[0]
	if req.TemplateID != "d-5b0f2c1e9a8d4c7b8e6f1a2b3c4d5e01" || req.From != "hello@shop.example" {
		t.Errorf("request %+v", req)
	}

	body := []byte(fmt.Sprintf(`[{"email":"user-3@example.com","timestamp":%d,"event":"unsubscribe","sg_event_id":"ev-1","user_id":"user-3","command_id":"c","trigger":"pricing-revisit","step":"1"}]`, time.Now().Unix()))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	d := sha256.Sum256(append([]byte(ts), body...))
	sig, _ := ecdsa.SignASN1(rand.Reader, priv, d[:])
	post := func() {
		for {
			r, _ := http.NewRequest(http.MethodPost, "http://"+hook+"/sendgrid/events", bytes.NewReader(body))
			r.Header.Set(webhook.HeaderTimestamp, ts)
			r.Header.Set(webhook.HeaderSignature, base64.StdEncoding.EncodeToString(sig))
			resp, err := http.DefaultClient.Do(r)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			select { // the webhook listener may not be up yet, nor its dedupe store restored (503)
			case <-actx.Done():
				t.Fatal(err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	post()
	post() // SendGrid posts it again: published once
	// The outcome of the event is recorded for the sink, after the event.
	kafkatest.Await(t, seeds, schema.TopicSinkOutcomes, 1, 10*time.Second)
	if n := len(kafkatest.ReadAll(t, seeds, schema.TopicSinkOutcomes)); n != 1 {
		t.Errorf("%d outcomes, want 1", n)
	}
	recs := kafkatest.ReadAll(t, seeds, schema.TopicEvents)
	if len(recs) != 1 {
		t.Fatalf("%d events published, want 1", len(recs))
	}
	ev, err := schema.DecodeEvent(recs[0].Value)
	if err != nil || ev.Event != "Unsubscribed" || ev.UserID != "user-3" || string(recs[0].Key) != "user-3" {
		t.Fatalf("event %+v %v", ev, err)
	}

	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "no webhook here") {
		t.Errorf("warned of a missing webhook while serving one:\n%s", stderr.String())
	}
	for _, s := range []string{stdout.String(), stderr.String()} {
		if strings.Contains(s, key) || strings.Contains(s, "never-printed") {
			t.Fatal("the API key was printed")
		}
		if strings.Contains(s, "user-3@example.com") {
			t.Fatal("an address was printed")
		}
	}
}

// TestSinkWarnsWithoutWebhook: a SendGrid sink without the webhook says at
// start what becomes of requests whose answer never came.
func TestSinkWarnsWithoutWebhook(t *testing.T) {
	t.Setenv(envSendGridKey, "SG.cli-test.never-printed")
	cluster, _ := kafkatest.Cluster(t, 2)
	srv := sendgridtest.New(t, sendgridtest.Options{APIKey: "SG.cli-test.never-printed"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"sink", "--brokers", cluster.ListenAddrs()[0], "--state-dir", t.TempDir(),
			"--transport", "sendgrid", "--sendgrid.templates", "../../testdata/templates/sendgrid.yaml",
			"--sendgrid.url", srv.URL, "--sendgrid.unknown-deadline", "10m", "--metrics.listen", ""},
			&stdout, &stderr, assets())
	}()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(stderr.String(), "sink started") {
		select {
		case <-deadline:
			t.Fatalf("the sink did not start:\n%s", stderr.String())
		case <-tick.C:
		}
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	if out := stderr.String(); !strings.Contains(out, "no webhook here") || !strings.Contains(out, "unknown_deadline=10m0s") {
		t.Fatalf("no warning of the missing webhook:\n%s", out)
	}
}
