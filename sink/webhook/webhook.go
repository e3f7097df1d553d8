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
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/segmentio/encoding/json"
	"github.com/twmb/franz-go/pkg/kadm"
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
	// Producer publishes the events and the outcomes; its partitioner must
	// be Kafka's default (murmur2 by key), as the processor and the sink
	// expect. Required.
	Producer *kgo.Client
	// Kafka are the options of the client Run reads OutcomesTopic with
	// (seed brokers, TLS, SASL). Required.
	Kafka []kgo.Opt
	// Dir holds the dedupe store (Pebble). Required. It may be empty or
	// lost: Run refills it from OutcomesTopic.
	Dir string
	// Topic is the events topic. Default schema.TopicEvents.
	Topic string
	// OutcomesTopic receives one record per event of ours; default
	// schema.TopicSinkOutcomes. It must have as many partitions as
	// send-commands.
	OutcomesTopic string
	// MaxAge refuses requests whose timestamp is further than this from
	// now, either way. Default 10 min.
	MaxAge time.Duration
	// MaxBody bounds a request body. Default 8 MiB.
	MaxBody int64
	// DedupeWindow is how long a published event id is remembered.
	// Default 25 h: SendGrid retries a post for up to 24 hours after the
	// event. OutcomesTopic's retention must be longer.
	DedupeWindow time.Duration
	// ExpireEvery is how often ids older than DedupeWindow are removed
	// from the store. Default 1 hour.
	ExpireEvery time.Duration
	// FS replaces the file system of the store (tests). Default the real
	// one.
	FS vfs.FS
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
	seen     *seen
	ready    atomic.Bool
}

// New checks cfg, opens the dedupe store in cfg.Dir and returns a handler.
// It answers 503 until Run has read OutcomesTopic up to its end; Close
// releases the store.
func New(cfg Config) (*Handler, error) {
	if cfg.PublicKey == nil || cfg.Producer == nil || len(cfg.Kafka) == 0 || cfg.Dir == "" {
		return nil, fmt.Errorf("webhook: PublicKey, Producer, Kafka and Dir are required")
	}
	if cfg.Topic == "" {
		cfg.Topic = schema.TopicEvents
	}
	if cfg.OutcomesTopic == "" {
		cfg.OutcomesTopic = schema.TopicSinkOutcomes
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 10 * time.Minute
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 8 << 20
	}
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = 25 * time.Hour
	}
	if cfg.ExpireEvery <= 0 {
		cfg.ExpireEvery = time.Hour
	}
	if cfg.FS == nil {
		cfg.FS = vfs.Default
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
	st, err := openSeen(cfg.Dir, cfg.FS, cfg.Logger)
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, seen: st}
	m := cfg.Meter.Meter("github.com/microtrigger/microtrigger/sink/webhook")
	h.events, _ = m.Int64Counter("microtrigger_sink_webhook_events_total",
		metric.WithDescription("SendGrid webhook events, by SendGrid type and result: published (into events and sink-outcomes), recorded (into sink-outcomes only), duplicate, unattributed, invalid."))
	h.requests, _ = m.Int64Counter("microtrigger_sink_webhook_requests_total",
		metric.WithDescription("SendGrid webhook requests, by HTTP status answered."))
	return h, nil
}

// Close releases the dedupe store. Call it after Run has returned.
func (h *Handler) Close() error { return h.seen.close() }

// Ready reports whether the dedupe store has caught up with OutcomesTopic,
// so that requests are served.
func (h *Handler) Ready() bool { return h.ready.Load() }

// Run reads OutcomesTopic into the dedupe store, every partition, from
// where the store stopped (from DedupeWindow ago when it is empty), marks
// the handler ready once it has read up to the end offsets listed at the
// start, and goes on reading, so that an event published by any instance
// is known to all. It returns nil when ctx ends.
func (h *Handler) Run(ctx context.Context) error {
	err := h.run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (h *Handler) run(ctx context.Context) error {
	topic := h.cfg.OutcomesTopic
	adm := kadm.NewClient(h.cfg.Producer)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("webhook: list %s end offsets: %w", topic, err)
	}
	start := map[int32]kgo.Offset{}
	target := map[int32]int64{} // partitions to read up to this offset before serving
	var fromWindow []int32
	var serr error
	ends.Each(func(o kadm.ListedOffset) {
		next, ok, err := h.seen.offset(o.Partition)
		serr = errors.Join(serr, err)
		if !ok || next > o.Offset { // empty store, or a recreated topic
			fromWindow = append(fromWindow, o.Partition)
			return
		}
		start[o.Partition] = kgo.NewOffset().At(next)
		if next < o.Offset {
			target[o.Partition] = o.Offset
		}
	})
	if serr != nil {
		return serr
	}
	if len(fromWindow) > 0 {
		since := h.cfg.Now().Add(-h.cfg.DedupeWindow)
		offs, err := adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), topic)
		if err == nil {
			err = offs.Error()
		}
		if err != nil {
			return fmt.Errorf("webhook: list %s offsets since %s: %w", topic, schema.FormatTime(since), err)
		}
		for _, p := range fromWindow {
			o, _ := offs.Lookup(topic, p)
			end, _ := ends.Lookup(topic, p)
			start[p] = kgo.NewOffset().At(o.Offset)
			if o.Offset < end.Offset {
				target[p] = end.Offset
			}
		}
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, h.cfg.Kafka...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}))...)
	if err != nil {
		return fmt.Errorf("webhook: %s reader: %w", topic, err)
	}
	defer cl.Close()
	began, n := time.Now(), 0
	catchUp := func() {
		if len(target) == 0 && !h.ready.Load() {
			h.ready.Store(true)
			h.cfg.Logger.Info("webhook dedupe store caught up", "topic", topic, "records", n, "elapsed", time.Since(began).Round(time.Millisecond))
		}
	}
	catchUp()
	// The store is closed after Run returns: the expiry must be done.
	var wg sync.WaitGroup
	defer wg.Wait()
	ectx, stopExpiry := context.WithCancel(ctx)
	defer stopExpiry()
	wg.Go(func() { h.expireLoop(ectx) })
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("webhook: read %s partition %d: %w", topic, p, err))
		})
		if ferr != nil {
			return ferr
		}
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if ferr != nil || len(fp.Records) == 0 {
				return
			}
			if err := h.seen.apply(fp.Partition, fp.Records); err != nil {
				ferr = err
				return
			}
			n += len(fp.Records)
			if t, ok := target[fp.Partition]; ok && fp.Records[len(fp.Records)-1].Offset+1 >= t {
				delete(target, fp.Partition)
			}
		})
		if ferr != nil {
			return ferr
		}
		catchUp()
	}
}

// expireLoop removes old ids from the store until ctx ends. Lookups hold
// ids to the window anyway; this only bounds the store.
func (h *Handler) expireLoop(ctx context.Context) {
	t := time.NewTicker(h.cfg.ExpireEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := h.seen.expire(h.cfg.Now().Add(-h.cfg.DedupeWindow))
		if err != nil {
			h.cfg.Logger.Warn("expire webhook dedupe store", "err", err)
			continue
		}
		h.cfg.Logger.Debug("webhook dedupe store expired", "ids", n)
	}
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
	if !h.ready.Load() {
		// Not knowing what was published, it could publish twice.
		h.answer(w, r, http.StatusServiceUnavailable, "restoring the dedupe state; retry")
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
	now := h.cfg.Now()
	evRecs, outRecs, ids, err := h.records(r.Context(), events, now)
	if err != nil {
		h.cfg.Logger.Error("check webhook events against the dedupe store", "err", err)
		h.answer(w, r, http.StatusServiceUnavailable, "cannot check events now; retry")
		return
	}
	if len(outRecs) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		// The events first, then the outcomes: an outcome marks its event
		// as published for every instance, so it must not precede it. A
		// failure in between has SendGrid post again, which publishes the
		// events again (the processor drops them by messageId) rather
		// than never.
		for _, recs := range [][]*kgo.Record{evRecs, outRecs} {
			if len(recs) == 0 {
				continue
			}
			if err := h.cfg.Producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				h.cfg.Logger.Error("publish webhook events", "topic", recs[0].Topic, "err", err)
				h.answer(w, r, http.StatusServiceUnavailable, "cannot publish events now; retry")
				return
			}
		}
		// Run reads them back too; recording them here at once covers a
		// redelivery to this instance before then.
		if err := h.seen.add(ids, now); err != nil {
			h.cfg.Logger.Warn("record published webhook events", "err", err)
		}
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

// records turns events into records for events and for OutcomesTopic,
// skipping what was published before, and returns the ids of the events
// kept.
func (h *Handler) records(ctx context.Context, events []Event, now time.Time) (evRecs, outRecs []*kgo.Record, ids []string, err error) {
	batch := map[string]bool{}
	since := now.Add(-h.cfg.DedupeWindow)
	for i := range events {
		e := &events[i]
		user := e.Args[render.ArgUserID]
		if user == "" {
			h.count(ctx, e.Type, "unattributed")
			continue
		}
		id := "sg:" + e.EventID
		if e.EventID == "" || len(e.EventID) > 100 {
			id = "sg:" + schema.ContentID(e.Raw)
		}
		dup := batch[id]
		if !dup {
			if dup, err = h.seen.has(id, since); err != nil {
				return nil, nil, nil, err
			}
		}
		if dup {
			h.count(ctx, e.Type, "duplicate")
			continue
		}
		o := Outcome{ID: id, Event: e.Type, CommandID: e.Args[render.ArgCommandID], At: e.Timestamp}
		if len(o.Event) > maxOutcomeField {
			o.Event = "other"
		}
		ov, err := MarshalOutcome(&o)
		if err != nil {
			h.count(ctx, e.Type, "invalid")
			h.cfg.Logger.Warn("webhook event not recordable", "type", typeLabel(e.Type), "err", err)
			continue
		}
		batch[id] = true
		ids = append(ids, id)
		outRecs = append(outRecs, &kgo.Record{Topic: h.cfg.OutcomesTopic, Key: []byte(user), Value: ov, Timestamp: now})
		name := segmentName(e.Type)
		if name == "" {
			h.count(ctx, e.Type, "recorded")
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
		evRecs = append(evRecs, &kgo.Record{Topic: h.cfg.Topic, Key: []byte(user), Value: v, Timestamp: ev.Timestamp})
		h.count(ctx, e.Type, "published")
	}
	return evRecs, outRecs, ids, nil
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
