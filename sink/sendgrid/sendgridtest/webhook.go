package sendgridtest

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
	"net/http"
	"strconv"
	"time"

	"github.com/segmentio/encoding/json"
)

// Header names of SendGrid's Signed Event Webhook.
const (
	headerSignature = "X-Twilio-Email-Event-Webhook-Signature"
	headerTimestamp = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// Event is one Event Webhook event as SendGrid posts it: its own fields
// (email, timestamp, event, sg_event_id, sg_message_id…) and the message's
// custom arguments side by side.
type Event map[string]any

// Events returns the events SendGrid would post for the personalizations
// the server accepted: for each one whose command_id is in ids (every one
// when ids is empty), one event of each type, in order, timestamped with
// the server's clock. Each event has its own sg_event_id, the same on
// every call, so calling it twice yields SendGrid's duplicates.
func (s *Server) Events(ids []string, types ...string) []Event {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	ts := s.opts.Now().Unix()
	var out []Event
	for ri, req := range s.Accepted() {
		for pi, p := range req.Personalizations {
			if len(ids) > 0 && !want[p.CustomArgs["command_id"]] {
				continue
			}
			msgID := fmt.Sprintf("fake-%d-%d.filter0001.16648.5515E0B88.0", ri, pi)
			for _, typ := range types {
				sum := sha256.Sum256(fmt.Appendf(nil, "%d/%d/%s", ri, pi, typ))
				e := Event{
					"timestamp":     ts,
					"event":         typ,
					"sg_event_id":   base64.RawURLEncoding.EncodeToString(sum[:16]),
					"sg_message_id": msgID,
					"smtp-id":       "<" + msgID + "@ismtpd-fake>",
				}
				if len(p.To) > 0 {
					e["email"] = p.To[0]
				}
				switch typ {
				case "delivered":
					e["response"] = "250 OK"
				case "deferred":
					e["response"] = "421 try again later"
					e["attempt"] = "1"
				}
				for k, v := range p.CustomArgs {
					e[k] = v
				}
				out = append(out, e)
			}
		}
	}
	return out
}

// Webhook signs and posts Event Webhook requests as SendGrid does: an
// ECDSA P-256 signature (base64 DER) over the timestamp followed by the
// body, with its own key. Give its PublicKey to the receiving end.
type Webhook struct {
	key    *ecdsa.PrivateKey
	now    func() time.Time
	client *http.Client
}

// NewWebhook returns a webhook with a new key whose timestamps come from
// now (default time.Now).
func NewWebhook(now func() time.Time) (*Webhook, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sendgridtest: webhook key: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Webhook{key: key, now: now, client: &http.Client{Timeout: 30 * time.Second}}, nil
}

// PublicKey is the verification key as SendGrid's settings page shows it:
// base64 DER.
func (w *Webhook) PublicKey() string {
	der, _ := x509.MarshalPKIXPublicKey(&w.key.PublicKey)
	return base64.StdEncoding.EncodeToString(der)
}

// PublicKeyPEM is the verification key as a PEM "PUBLIC KEY" block.
func (w *Webhook) PublicKeyPEM() []byte {
	der, _ := x509.MarshalPKIXPublicKey(&w.key.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Delivery is one signed request: posting it again is SendGrid posting the
// same request again.
type Delivery struct {
	Body      []byte
	Timestamp string
	Signature string
}

// Sign encodes events as a request body and signs it with the current
// time.
func (w *Webhook) Sign(events []Event) (Delivery, error) {
	body, err := json.Marshal(events)
	if err != nil {
		return Delivery{}, fmt.Errorf("sendgridtest: encode events: %w", err)
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	d := sha256.Sum256(append([]byte(ts), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, w.key, d[:])
	if err != nil {
		return Delivery{}, fmt.Errorf("sendgridtest: sign: %w", err)
	}
	return Delivery{Body: body, Timestamp: ts, Signature: base64.StdEncoding.EncodeToString(sig)}, nil
}

// Post sends d to url and returns the status answered.
func (w *Webhook) Post(ctx context.Context, url string, d Delivery) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(d.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "SendGrid Event API")
	req.Header.Set(headerTimestamp, d.Timestamp)
	req.Header.Set(headerSignature, d.Signature)
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("sendgridtest: post events: %w", err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Emit signs events and posts them to url until it is answered 200, as
// SendGrid retries a post that got another status (a 503 while the
// receiving end restores its state); it returns the delivery, so that a
// test can post it again.
func (w *Webhook) Emit(ctx context.Context, url string, events []Event) (Delivery, error) {
	if len(events) == 0 {
		// SendGrid never posts an empty batch; a test that does is
		// asking for events of messages the server has not accepted.
		return Delivery{}, fmt.Errorf("sendgridtest: no events to post")
	}
	d, err := w.Sign(events)
	if err != nil {
		return Delivery{}, err
	}
	return d, w.PostUntilOK(ctx, url, d)
}

// PostUntilOK posts d to url until it is answered 200 or ctx ends,
// backing off a little between attempts as SendGrid does.
func (w *Webhook) PostUntilOK(ctx context.Context, url string, d Delivery) error {
	wait := 5 * time.Millisecond
	for {
		code, err := w.Post(ctx, url, d)
		if err == nil && code == http.StatusOK {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("sendgridtest: events not accepted (last: status %d, %v): %w", code, err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}
