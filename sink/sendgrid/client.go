package sendgrid

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sendgrid/rest"
	sendgridgo "github.com/sendgrid/sendgrid-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/microtrigger/microtrigger/internal/tracing"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink/render"
)

// DefaultBaseURL is SendGrid's API host.
const DefaultBaseURL = "https://api.sendgrid.com"

// MaxPersonalizations is SendGrid's limit per request.
const MaxPersonalizations = 1000

// Config configures a Client. Zero fields take the documented defaults.
type Config struct {
	// APIKey authenticates the requests. Required.
	APIKey APIKey
	// BaseURL is the API host. Default DefaultBaseURL.
	BaseURL string
	// HTTPClient makes the requests. Default: a client with a Timeout
	// overall, 10 s to connect and for the TLS handshake.
	HTTPClient *http.Client
	// Timeout bounds one request of the default HTTPClient. Default 30 s.
	Timeout time.Duration
	// BatchSize is the most personalizations per request, 1 to 1000.
	// Default 1000; 1 sends one request per message.
	BatchSize int
	// Concurrency is how many requests may be in flight at once. Default 4.
	Concurrency int
	// RateLimit is the most requests started per second (token bucket);
	// negative means unlimited. Default 50.
	RateLimit float64
	// RateBurst is the bucket's size. Default 10.
	RateBurst int
	// MaxAttempts bounds the attempts of one request. Default 8.
	MaxAttempts int
	// RetryBudget bounds the time from a request's first attempt to its
	// last. Default 15 min.
	RetryBudget time.Duration
	// BackoffBase and BackoffMax shape the exponential backoff between
	// attempts: the n-th wait is drawn from [d/2, d] with
	// d = min(BackoffMax, BackoffBase·2^(n-1)). Defaults 1 s and 1 min.
	BackoffBase, BackoffMax time.Duration
	// MaxWait caps a wait asked for by a 429's reset header. Default 5 min.
	MaxWait time.Duration
	// Now and Sleep are the clock (default the wall clock) and the way to
	// wait (default a timer that ends early when ctx does).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a number in [0, 1). Default math/rand/v2.
	Jitter func() float64
	// Logger receives retries and refusals. Default discard.
	Logger *slog.Logger
	// Meter receives microtrigger_sink_request_duration_seconds and
	// microtrigger_sink_retries_total. Default no-op.
	Meter metric.MeterProvider
	// Tracer receives a span per request (each attempt), child of the
	// trace its first message's command carried (render.Message's
	// TraceParent) and linked to the others'; the request carries the
	// span's traceparent header. Default nil: no spans, the command's
	// traceparent passed on as it came.
	Tracer trace.TracerProvider
}

// Outcome is what became of one message.
type Outcome uint8

// Outcomes of Send.
const (
	// Accepted: SendGrid answered 2xx for a request carrying the message.
	Accepted Outcome = iota + 1
	// Rejected: SendGrid refused it with a 4xx; not retried.
	Rejected
	// Exhausted: the retry budget ran out.
	Exhausted
	// Unknown: the request was sent and no answer came back.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case Accepted:
		return "accepted"
	case Rejected:
		return "rejected"
	case Exhausted:
		return "exhausted"
	case Unknown:
		return "unknown"
	}
	return "pending"
}

// Result is the outcome of one message. The zero Result means the message
// was never settled (Send stopped first): it was not accepted.
type Result struct {
	Outcome  Outcome
	Status   int    // the last HTTP status, 0 for none
	Message  string // a sentence for people: status and SendGrid's messages
	Attempts int
}

// Settlement is what an attempt's answer says about its messages.
type Settlement uint8

// Settlements passed to Journal.Settle.
const (
	// SettledAccepted: SendGrid accepted the request.
	SettledAccepted Settlement = iota + 1
	// SettledNotAccepted: SendGrid answered without accepting anything, or
	// the request never left; the messages may be sent again.
	SettledNotAccepted
	// SettledUnknown: the request was written and no answer came.
	SettledUnknown
)

// Journal is told about every attempt. Attempt runs before a request is
// made with the messages it carries; Settle runs after the attempt. An
// error from either stops Send.
type Journal interface {
	Attempt(ctx context.Context, msgs []render.Message) error
	Settle(ctx context.Context, msgs []render.Message, s Settlement) error
}

// Client sends mail through the v3 API. It is safe for concurrent use.
type Client struct {
	cfg      Config
	tracer   trace.Tracer
	limiter  *limiter
	duration metric.Float64Histogram
	retries  metric.Int64Counter
}

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("sendgrid: no API key")
	}
	if strings.ContainsAny(string(cfg.APIKey), "\r\n") {
		return nil, fmt.Errorf("sendgrid: the API key holds a line break")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("sendgrid: base URL %q is not an http(s) URL", cfg.BaseURL)
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{
			Timeout: cfg.Timeout,
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout:   10 * time.Second,
				ResponseHeaderTimeout: cfg.Timeout,
				MaxIdleConnsPerHost:   16,
				IdleConnTimeout:       90 * time.Second,
				ForceAttemptHTTP2:     true,
			},
		}
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = MaxPersonalizations
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > MaxPersonalizations {
		return nil, fmt.Errorf("sendgrid: batch size %d not in 1..%d", cfg.BatchSize, MaxPersonalizations)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 50
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = 10
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.RetryBudget <= 0 {
		cfg.RetryBudget = 15 * time.Minute
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = time.Minute
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = Sleep
	}
	if cfg.Jitter == nil {
		cfg.Jitter = rand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Meter == nil {
		cfg.Meter = noop.NewMeterProvider()
	}
	c := &Client{cfg: cfg, limiter: newLimiter(max(cfg.RateLimit, 0), cfg.RateBurst, cfg.Now, cfg.Sleep)}
	tp := cfg.Tracer
	if tp == nil {
		tp = tracenoop.NewTracerProvider()
	}
	c.tracer = tp.Tracer("github.com/microtrigger/microtrigger/sink/sendgrid")
	m := cfg.Meter.Meter("github.com/microtrigger/microtrigger/sink/sendgrid")
	// Boundaries in seconds: from a fast 202 (5 ms) to the request
	// timeout (30 s by default).
	c.duration, _ = m.Float64Histogram("microtrigger_sink_request_duration_seconds",
		metric.WithDescription("Duration of SendGrid mail send requests, by status (HTTP code, or none)."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	c.retries, _ = m.Int64Counter("microtrigger_sink_retries_total",
		metric.WithDescription("SendGrid requests retried, by reason: rate_limited, server_error, connection."))
	return c, nil
}

// Sleep waits for d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Send delivers msgs and returns one Result per message, in order. It
// returns an error when it had to stop before settling every message:
// ErrUnauthorized, a Journal error, or ctx ending while waiting; messages
// left with a zero Result were not accepted. A request in flight when ctx
// ends is completed, so that stopping never makes an outcome unknown.
func (c *Client) Send(ctx context.Context, msgs []render.Message, j Journal) ([]Result, error) {
	results := make([]Result, len(msgs))
	groups := c.group(msgs)
	var (
		mu    sync.Mutex
		first error
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	stopped := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first != nil
	}
	workers := min(c.cfg.Concurrency, len(groups))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(groups) || stopped() {
					return
				}
				if err := c.deliver(ctx, msgs, groups[i], results, j); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return results, first
}

// group splits msgs (by index) into requests of messages sharing
// everything but the recipient and its data, at most BatchSize each, in
// the order of their first message.
func (c *Client) group(msgs []render.Message) [][]int {
	type key struct {
		tmpl, from, fromName, reply, replyName, cats string
		asm                                          int
	}
	var out [][]int
	open := map[key]int{}
	for i := range msgs {
		m := &msgs[i]
		k := key{m.TemplateID, m.From.Email, m.From.Name, m.ReplyTo.Email, m.ReplyTo.Name, strings.Join(m.Categories, "\x00"), m.ASMGroupID}
		if m.TemplateID == "" {
			out = append(out, []int{i}) // content of its own: never batched
			continue
		}
		g, ok := open[k]
		if !ok || len(out[g]) >= c.cfg.BatchSize {
			g = len(out)
			out = append(out, nil)
			open[k] = g
		}
		out[g] = append(out[g], i)
	}
	return out
}

// deliver sends one request (the messages at idx) until it is settled.
func (c *Client) deliver(ctx context.Context, all []render.Message, idx []int, results []Result, j Journal) error {
	msgs := make([]render.Message, len(idx))
	for k, i := range idx {
		msgs[k] = all[i]
	}
	set := func(r Result) {
		for _, i := range idx {
			results[i] = r
		}
	}
	body, err := c.body(msgs)
	if err != nil {
		set(Result{Outcome: Rejected, Message: "cannot encode the request: " + err.Error()})
		return nil
	}
	ctx, links := traced(ctx, msgs)
	start := c.cfg.Now()
	for attempt := 1; ; attempt++ {
		if err := c.limiter.wait(ctx); err != nil {
			return err
		}
		if err := j.Attempt(ctx, msgs); err != nil {
			return err
		}
		status, err := c.do(ctx, body, len(msgs), attempt, links)
		if err == nil {
			if err := j.Settle(ctx, msgs, SettledAccepted); err != nil {
				return err
			}
			set(Result{Outcome: Accepted, Status: status, Attempts: attempt})
			return nil
		}
		var unknown *UnknownError
		if errors.As(err, &unknown) {
			if err := j.Settle(ctx, msgs, SettledUnknown); err != nil {
				return err
			}
			c.cfg.Logger.Warn("sendgrid request outcome unknown", "messages", len(msgs), "attempt", attempt, "err", unknown.Err)
			set(Result{Outcome: Unknown, Attempts: attempt, Message: unknown.Error()})
			return nil
		}
		if err := j.Settle(ctx, msgs, SettledNotAccepted); err != nil {
			return err
		}
		var apiErr *APIError
		var retry *RetryError
		switch {
		case errors.As(err, &retry):
		case errors.As(err, &apiErr) && (apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden):
			return fmt.Errorf("%w: %s", ErrUnauthorized, apiErr.Error())
		case errors.As(err, &apiErr) && len(idx) > 1 && (apiErr.Status == http.StatusBadRequest || apiErr.Status == http.StatusRequestEntityTooLarge):
			// One message may spoil the request: split to isolate it.
			c.cfg.Logger.Debug("sendgrid refused a request, splitting it", "messages", len(idx), "status", apiErr.Status)
			h := len(idx) / 2
			if err := c.deliver(ctx, all, idx[:h], results, j); err != nil {
				return err
			}
			return c.deliver(ctx, all, idx[h:], results, j)
		case errors.As(err, &apiErr):
			c.cfg.Logger.Warn("sendgrid refused a message", "status", apiErr.Status, "message", strings.Join(apiErr.Messages, "; "),
				"to", schema.Email(msgs[0].To.Email))
			set(Result{Outcome: Rejected, Status: apiErr.Status, Attempts: attempt,
				Message: "refused: " + apiErr.Error()})
			return nil
		default:
			return err
		}
		wait := c.backoff(attempt)
		reason := "connection"
		switch {
		case retry.Status == http.StatusTooManyRequests:
			reason = "rate_limited"
			if retry.Wait > 0 {
				wait = min(retry.Wait, c.cfg.MaxWait) + time.Duration(c.cfg.Jitter()*float64(time.Second))
			}
		case retry.Status >= 500:
			reason = "server_error"
			if retry.Wait > 0 {
				wait = min(retry.Wait, c.cfg.MaxWait)
			}
		}
		elapsed := c.cfg.Now().Sub(start)
		if attempt >= c.cfg.MaxAttempts || elapsed+wait > c.cfg.RetryBudget {
			set(Result{Outcome: Exhausted, Status: retry.Status, Attempts: attempt,
				Message: fmt.Sprintf("gave up after %d attempts over %s; last: %s", attempt, elapsed.Round(time.Millisecond), retry.Error())})
			c.cfg.Logger.Warn("sendgrid retries exhausted", "messages", len(msgs), "attempts", attempt, "err", retry.Error())
			return nil
		}
		c.retries.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
		c.cfg.Logger.Info("sendgrid request retried", "reason", reason, "attempt", attempt, "wait", wait, "messages", len(msgs))
		if retry.Status == http.StatusTooManyRequests {
			c.limiter.pauseUntil(c.cfg.Now().Add(wait))
		} else if err := c.cfg.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// backoff is the wait after the attempt-th failure: drawn from [d/2, d].
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.BackoffBase
	for i := 1; i < attempt && d < c.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, c.cfg.BackoffMax)
	return d/2 + time.Duration(c.cfg.Jitter()*float64(d/2))
}

// do makes one attempt. It returns the status and nil for a 2xx, or a
// *RetryError, *APIError or *UnknownError.
func (c *Client) do(ctx context.Context, body []byte, messages, attempt int, links []trace.Link) (status int, err error) {
	ctx, span := c.tracer.Start(ctx, "sendgrid.mail_send", trace.WithSpanKind(trace.SpanKindClient), trace.WithLinks(links...),
		trace.WithAttributes(attribute.String("http.request.method", http.MethodPost), attribute.Int("microtrigger.messages", messages),
			attribute.Int("microtrigger.attempt", attempt)))
	defer func() {
		if status > 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", status))
		}
		if err != nil {
			span.SetStatus(codes.Error, Sanitize(err.Error()))
		}
		span.End()
	}()
	r := sendgridgo.GetRequest(string(c.cfg.APIKey), "/v3/mail/send", c.cfg.BaseURL)
	r.Method = rest.Post
	r.Body = body
	req, err := rest.BuildRequestObject(r)
	if err != nil {
		return 0, &APIError{Messages: []string{"cannot build the request"}}
	}
	tracing.Propagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	var wrote atomic.Bool
	ct := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			wrote.Store(true)
		}
	}}
	// A request once started runs to its end even when ctx ends: cutting
	// it would make its outcome unknown. The HTTP client's timeout bounds it.
	req = req.WithContext(httptrace.WithClientTrace(context.WithoutCancel(ctx), ct))
	start := time.Now()
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		c.observe(ctx, start, "none")
		err = unwrapURL(err)
		if wrote.Load() {
			return 0, &UnknownError{Err: err}
		}
		return 0, &RetryError{Err: fmt.Errorf("connect to sendgrid: %w", err)}
	}
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	c.observe(ctx, start, strconv.Itoa(resp.StatusCode))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	if rerr != nil && resp.StatusCode >= 500 {
		b = nil
	}
	apiErr := &APIError{Status: resp.StatusCode, Messages: parseErrors(b)}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return resp.StatusCode, &RetryError{Status: resp.StatusCode, Wait: c.resetWait(resp.Header), Err: apiErr}
	case resp.StatusCode >= 500:
		return resp.StatusCode, &RetryError{Status: resp.StatusCode, Wait: retryAfter(resp.Header), Err: apiErr}
	}
	return resp.StatusCode, apiErr
}

func (c *Client) observe(ctx context.Context, start time.Time, status string) {
	c.duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("status", status)))
}

// resetWait reads X-RateLimit-Reset (unix seconds), else Retry-After.
func (c *Client) resetWait(h http.Header) time.Duration {
	if s := h.Get("X-Ratelimit-Reset"); s != "" {
		if sec, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			if d := time.Unix(sec, 0).Sub(c.cfg.Now()); d > 0 {
				return d
			}
			return time.Millisecond // reset already passed: go again, after the jitter
		}
	}
	return retryAfter(h)
}

func retryAfter(h http.Header) time.Duration {
	if s := h.Get("Retry-After"); s != "" {
		if sec, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && sec > 0 {
			return time.Duration(sec) * time.Second
		}
	}
	return 0
}

// unwrapURL drops *url.Error's "Post <url>:" prefix.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("timeout: %w", ue.Err)
		}
		return ue.Err
	}
	return err
}

// traced returns ctx with the trace context of the first message whose
// command carried one, and links to the other messages' distinct ones: a
// request carries the emails of many traces.
func traced(ctx context.Context, msgs []render.Message) (context.Context, []trace.Link) {
	var links []trace.Link
	parent := trace.SpanContext{}
	seen := map[trace.SpanID]bool{}
	for i := range msgs {
		sc := tracing.FromTraceparent(msgs[i].TraceParent)
		if !sc.IsValid() || seen[sc.SpanID()] {
			continue
		}
		seen[sc.SpanID()] = true
		if !parent.IsValid() {
			parent = sc
			continue
		}
		if len(links) < 128 {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	return ctx, links
}
