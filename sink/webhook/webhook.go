package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink/render"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
)

// Header names of SendGrid's signed event webhook.
const (
	HeaderSignature = "X-Twilio-Email-Event-Webhook-Signature"
	HeaderTimestamp = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// Config configures a Handler.
type Config struct {
	// PublicKey verifies the signatures. Required: see ParsePublicKey.
	PublicKey *ecdsa.PublicKey
	// Producer publishes the events; its partitioner must be Kafka's
	// default (murmur2 by key), as the processor expects. Required.
	Producer *kgo.Client
	// Topic is the events topic. Default schema.TopicEvents.
	Topic string
	// MaxAge refuses requests whose timestamp is further than this from
	// now, either way. Default 10 min.
	MaxAge time.Duration
	// MaxBody bounds a request body. Default 8 MiB.
	MaxBody int64
	// DedupeSize is how many recent sg_event_ids are remembered. Default
	// 100,000.
	DedupeSize int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger; default discard.
	Logger *slog.Logger
	// Meter receives microtrigger_sink_webhook_*; default no-op.
	Meter metric.MeterProvider
}

// Handler serves the webhook.
type Handler struct {
	cfg      Config
	events   metric.Int64Counter
	requests metric.Int64Counter

	mu    sync.Mutex
	seen  map[string]struct{}
	order []string // FIFO of seen ids
	next  int
}

// New checks cfg and returns a handler.
func New(cfg Config) (*Handler, error) {
	if cfg.PublicKey == nil || cfg.Producer == nil {
		return nil, fmt.Errorf("webhook: PublicKey and Producer are required")
	}
	if cfg.Topic == "" {
		cfg.Topic = schema.TopicEvents
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 10 * time.Minute
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 8 << 20
	}
	if cfg.DedupeSize <= 0 {
		cfg.DedupeSize = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Meter == nil {
		cfg.Meter = noop.NewMeterProvider()
	}
	h := &Handler{cfg: cfg, seen: make(map[string]struct{}), order: make([]string, cfg.DedupeSize)}
	m := cfg.Meter.Meter("github.com/microtrigger/microtrigger/sink/webhook")
	h.events, _ = m.Int64Counter("microtrigger_sink_webhook_events_total",
		metric.WithDescription("SendGrid webhook events, by SendGrid type and result: published, ignored, duplicate, unattributed, invalid."))
	h.requests, _ = m.Int64Counter("microtrigger_sink_webhook_requests_total",
		metric.WithDescription("SendGrid webhook requests, by HTTP status answered."))
	return h, nil
}

// ParsePublicKey reads the webhook's verification key: a PEM "PUBLIC KEY"
// block, or the base64 DER string SendGrid's settings page shows. Only
// ECDSA P-256 keys are accepted.
func ParsePublicKey(b []byte) (*ecdsa.PublicKey, error) {
	der := b
	if blk, _ := pem.Decode(b); blk != nil {
		der = blk.Bytes
	} else {
		s := strings.Join(strings.Fields(string(b)), "")
		d, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("webhook public key: neither PEM nor base64 DER")
		}
		der = d
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("webhook public key: %w", err)
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("webhook public key: not an ECDSA P-256 key")
	}
	return ek, nil
}

// Segment names of the SendGrid event types that are published.
func segmentName(sgType string) string {
	switch sgType {
	case "delivered":
		return "Email Delivered"
	case "open":
		return "Email Opened"
	case "click":
		return "Email Link Clicked"
	case "bounce", "dropped":
		return "Email Bounced"
	case "unsubscribe", "group_unsubscribe", "spamreport":
		return "Unsubscribed"
	}
	return ""
}

// typeLabel bounds the metric label to SendGrid's documented types.
func typeLabel(t string) string {
	switch t {
	case "processed", "deferred", "delivered", "open", "click", "bounce", "dropped",
		"spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe":
		return t
	}
	return "other"
}

func (h *Handler) answer(w http.ResponseWriter, r *http.Request, code int, msg string) {
	h.requests.Add(r.Context(), 1, metric.WithAttributes(attribute.String("code", strconv.Itoa(code))))
	if code >= 400 {
		h.cfg.Logger.Warn("webhook request refused", "code", code, "why", msg, "remote", r.RemoteAddr)
		http.Error(w, msg, code)
		return
	}
	w.WriteHeader(code)
}

// ServeHTTP handles one webhook delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.answer(w, r, http.StatusMethodNotAllowed, "POST only")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.answer(w, r, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		h.answer(w, r, http.StatusBadRequest, "cannot read body")
		return
	}
	if why := h.verify(r.Header, body); why != "" {
		h.answer(w, r, http.StatusUnauthorized, why)
		return
	}
	events, err := ParseEvents(body)
	if err != nil {
		h.answer(w, r, http.StatusBadRequest, err.Error())
		return
	}
	recs, ids := h.records(r.Context(), events)
	if len(recs) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		if err := h.cfg.Producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			h.cfg.Logger.Error("publish webhook events", "err", err)
			h.answer(w, r, http.StatusServiceUnavailable, "cannot publish events now; retry")
			return
		}
		h.remember(ids)
	}
	h.answer(w, r, http.StatusOK, "")
}

// verify returns why the signature is refused, or "".
func (h *Handler) verify(hdr http.Header, body []byte) string {
	sigB64, tsStr := hdr.Get(HeaderSignature), hdr.Get(HeaderTimestamp)
	if sigB64 == "" || tsStr == "" {
		return "unsigned request"
	}
	ts, err := strconv.ParseInt(tsStr, 10, 64)
	if err != nil {
		return "bad timestamp"
	}
	if age := h.cfg.Now().Sub(time.Unix(ts, 0)); age > h.cfg.MaxAge || age < -h.cfg.MaxAge {
		return "stale timestamp"
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return "bad signature encoding"
	}
	d := sha256.New()
	d.Write([]byte(tsStr))
	d.Write(body)
	if !ecdsa.VerifyASN1(h.cfg.PublicKey, d.Sum(nil), sig) {
		return "bad signature"
	}
	return ""
}

func (h *Handler) count(ctx context.Context, sgType, result string) {
	h.events.Add(ctx, 1, metric.WithAttributes(attribute.String("type", typeLabel(sgType)), attribute.String("result", result)))
}

// records turns events into records for events, skipping what was seen.
func (h *Handler) records(ctx context.Context, events []Event) ([]*kgo.Record, []string) {
	var recs []*kgo.Record
	var ids []string
	batch := map[string]bool{}
	for i := range events {
		e := &events[i]
		name := segmentName(e.Type)
		if name == "" {
			h.count(ctx, e.Type, "ignored")
			continue
		}
		user := e.Args[render.ArgUserID]
		if user == "" {
			h.count(ctx, e.Type, "unattributed")
			continue
		}
		id := "sg:" + e.EventID
		if e.EventID == "" {
			id = "sg:" + schema.ContentID(e.Raw)
		}
		if h.seenID(id) || batch[id] {
			h.count(ctx, e.Type, "duplicate")
			continue
		}
		ev := ToSegment(e, name, id, user)
		v, err := json.Marshal(&ev)
		if err == nil {
			_, err = schema.DecodeEvent(v)
		}
		if err != nil {
			h.count(ctx, e.Type, "invalid")
			// The type is SendGrid's, bounded like the metric label; the
			// decoder's error names fields, never values.
			h.cfg.Logger.Warn("webhook event not publishable", "type", typeLabel(e.Type), "err", err)
			continue
		}
		batch[id] = true
		ids = append(ids, id)
		recs = append(recs, &kgo.Record{Topic: h.cfg.Topic, Key: []byte(user), Value: v, Timestamp: ev.Timestamp})
		h.count(ctx, e.Type, "published")
	}
	return recs, ids
}

// ToSegment builds the Segment track call of a SendGrid event.
func ToSegment(e *Event, name, messageID, user string) schema.Event {
	props := map[string]any{"sg_event": e.Type}
	for _, k := range []string{render.ArgCommandID, render.ArgTrigger, render.ArgTemplate, render.ArgVariant} {
		if v := e.Args[k]; v != "" {
			props[k] = clip(v)
		}
	}
	if s, err := strconv.Atoi(e.Args[render.ArgStep]); err == nil {
		props[render.ArgStep] = s
	}
	if e.Type == "click" && e.URL != "" {
		props["url"] = clip(e.URL)
	}
	if e.Type == "bounce" || e.Type == "dropped" {
		if e.Reason != "" {
			props["reason"] = clip(sendgrid.Sanitize(e.Reason))
		}
		if e.BounceType != "" {
			props["bounce_type"] = clip(e.BounceType)
		}
	}
	return schema.Event{
		MessageID:  messageID,
		Type:       schema.TypeTrack,
		Event:      name,
		UserID:     user,
		Timestamp:  e.Timestamp,
		Properties: props,
	}
}

func clip(s string) string {
	if len(s) > schema.MaxPropertyLen {
		return strings.ToValidUTF8(s[:schema.MaxPropertyLen], "")
	}
	return s
}

func (h *Handler) seenID(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.seen[id]
	return ok
}

// remember adds ids to the bounded set, evicting the oldest.
func (h *Handler) remember(ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		if _, ok := h.seen[id]; ok {
			continue
		}
		if old := h.order[h.next]; old != "" {
			delete(h.seen, old)
		}
		h.order[h.next] = id
		h.seen[id] = struct{}{}
		h.next = (h.next + 1) % len(h.order)
	}
}
