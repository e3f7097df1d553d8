package sendgridtest

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/segmentio/encoding/json"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed mail_send.request.schema.json
var requestSchema []byte

// FaultKind is how the server misbehaves for one request.
type FaultKind uint8

// Kinds of fault.
const (
	// KindStatus answers with Fault.Status and a JSON error body.
	KindStatus FaultKind = iota + 1
	// KindHang never answers: the handler waits until the client gives up
	// (its timeout) or the server closes.
	KindHang
	// KindCut closes the connection without answering.
	KindCut
)

// Fault is one scripted misbehaviour, applied to the next request.
type Fault struct {
	Kind   FaultKind
	Status int
	// ResetIn sets a 429's X-RateLimit-Reset to now + ResetIn (whole
	// seconds, rounded up).
	ResetIn time.Duration
	// Accept counts the request as accepted before hanging or cutting: the
	// server queued the mail and the answer was lost.
	Accept bool
	// Before, when set, runs after the request is read and checked and
	// before the fault (a crash test kills the client here).
	Before func(Request)
}

// Status answers with code.
func Status(code int) Fault { return Fault{Kind: KindStatus, Status: code} }

// RateLimited answers 429 with a reset resetIn from now.
func RateLimited(resetIn time.Duration) Fault {
	return Fault{Kind: KindStatus, Status: http.StatusTooManyRequests, ResetIn: resetIn}
}

// Cut closes the connection after reading the request; accept says
// whether the server accepted the mail first.
func Cut(accept bool) Fault { return Fault{Kind: KindCut, Accept: accept} }

// Hang never answers; accept says whether the server accepted the mail.
func Hang(accept bool) Fault { return Fault{Kind: KindHang, Accept: accept} }

// Options configures a Server.
type Options struct {
	// APIKey is the key the server accepts. Required.
	APIKey string
	// Now is the server's clock, for rate-limit headers. Default time.Now.
	Now func() time.Time
	// RejectDomain, when set, refuses (400) every request with a recipient
	// at that domain, naming the field, as SendGrid does for an invalid
	// address.
	RejectDomain string
	// Templates, when set, lists the dynamic template ids that exist; a
	// request naming another is refused (400).
	Templates []string
}

// Request is an accepted (or about to be) request, decoded.
type Request struct {
	TemplateID       string
	From             string
	Categories       []string
	Personalizations []Personalization
	// Raw is the request body; Header its headers.
	Raw    []byte
	Header http.Header
	// At is when the server accepted it, by Options.Now.
	At time.Time
}

// Personalization is one recipient of a request.
type Personalization struct {
	To         []string
	CustomArgs map[string]string
	Data       map[string]any
}

// Server is the fake API.
type Server struct {
	*httptest.Server
	opts    Options
	schemas [2]*jsonschema.Schema // [0] plain, [1] with a dynamic template

	mu        sync.Mutex
	faults    []Fault
	received  int
	accepted  []Request
	delivered map[string]int
	changed   chan struct{}
}

// New starts a server on loopback; it closes when the test ends.
func New(t interface {
	Helper()
	Cleanup(func())
	Fatal(...any)
}, o Options) *Server {
	t.Helper()
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Start starts a server on loopback; the caller closes it.
func Start(o Options) (*Server, error) {
	if o.APIKey == "" {
		return nil, fmt.Errorf("sendgridtest: no API key")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{opts: o, delivered: map[string]int{}, changed: make(chan struct{})}
	for i, dynamic := range []bool{false, true} {
		sch, err := compileSchema(dynamic)
		if err != nil {
			return nil, err
		}
		s.schemas[i] = sch
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/mail/send", s.send)
	s.Server = httptest.NewServer(mux)
	return s, nil
}

// compileSchema compiles the request schema; with dynamic set, subject and
// content are not required (SendGrid's dynamic-template exception).
func compileSchema(dynamic bool) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(requestSchema))
	if err != nil {
		return nil, fmt.Errorf("sendgridtest: schema: %w", err)
	}
	if dynamic {
		doc.(map[string]any)["required"] = []any{"personalizations", "from"}
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("mail_send.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("mail_send.json")
}

// Script queues faults for the next requests, in order.
func (s *Server) Script(f ...Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, f...)
	s.mu.Unlock()
}

// Received is how many requests reached the handler.
func (s *Server) Received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.received
}

// Accepted returns the accepted requests.
func (s *Server) Accepted() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.accepted...)
}

// Delivered returns how many times each command id was accepted.
func (s *Server) Delivered() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.delivered))
	for k, v := range s.delivered {
		out[k] = v
	}
	return out
}

// Duplicates lists command ids accepted more than once, sorted.
func (s *Server) Duplicates() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, n := range s.delivered {
		if n > 1 {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// AwaitDelivered waits until n distinct command ids were accepted, or ctx
// ends.
func (s *Server) AwaitDelivered(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, ch := len(s.delivered), s.changed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("sendgridtest: %d of %d commands delivered: %w", got, n, ctx.Err())
		}
	}
}

type apiError struct {
	Message string  `json:"message"`
	Field   *string `json:"field"`
	Help    *string `json:"help"`
}

func (s *Server) fail(w http.ResponseWriter, status int, errs ...apiError) {
	if w.Header().Get("X-RateLimit-Reset") == "" {
		s.rateHeaders(w, 0)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string][]apiError{"errors": errs})
}

func field(f string) *string { return &f }

func (s *Server) rateHeaders(w http.ResponseWriter, resetIn time.Duration) {
	now := s.opts.Now()
	reset := now.Truncate(time.Minute).Add(time.Minute)
	remaining := "599"
	if resetIn > 0 {
		reset = now.Add(resetIn + time.Second - 1).Truncate(time.Second)
		remaining = "0"
	}
	w.Header().Set("X-RateLimit-Limit", "600")
	w.Header().Set("X-RateLimit-Remaining", remaining)
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.received++
	var f *Fault
	if len(s.faults) > 0 {
		f = &s.faults[0]
		s.faults = s.faults[1:]
	}
	s.mu.Unlock()

	if r.Header.Get("Authorization") != "Bearer "+s.opts.APIKey {
		s.fail(w, http.StatusUnauthorized, apiError{Message: "The provided authorization grant is invalid, expired, or revoked"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 30<<20))
	if err != nil {
		s.fail(w, http.StatusRequestEntityTooLarge, apiError{Message: "The JSON payload you have included in your request is too large."})
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.fail(w, http.StatusUnsupportedMediaType, apiError{Message: "Content-Type should be application/json."})
		return
	}
	req, errs := s.check(body)
	if len(errs) > 0 {
		s.fail(w, http.StatusBadRequest, errs...)
		return
	}
	req.Raw, req.Header = body, r.Header.Clone()
	if f != nil && f.Before != nil {
		f.Before(req)
	}
	if f != nil {
		switch f.Kind {
		case KindStatus:
			s.rateHeaders(w, f.ResetIn)
			switch {
			case f.Status == http.StatusTooManyRequests:
				s.fail(w, f.Status, apiError{Message: "too many requests"})
			case f.Status >= 500:
				s.fail(w, f.Status, apiError{Message: "internal server error"})
			default:
				s.fail(w, f.Status, apiError{Message: "scripted refusal", Field: field("personalizations")})
			}
			return
		case KindHang:
			if f.Accept {
				s.accept(req)
			}
			<-r.Context().Done()
			return
		case KindCut:
			if f.Accept {
				s.accept(req)
			}
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
				}
			}
			return
		}
	}
	s.accept(req)
	s.rateHeaders(w, 0)
	w.Header().Set("X-Message-Id", fmt.Sprintf("fake-%d", s.Received()))
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) accept(req Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req.At = s.opts.Now()
	s.accepted = append(s.accepted, req)
	for _, p := range req.Personalizations {
		s.delivered[p.CustomArgs["command_id"]]++
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// wireRequest is the part of a request the server reads.
type wireRequest struct {
	TemplateID string `json:"template_id"`
	From       struct {
		Email string `json:"email"`
	} `json:"from"`
	Categories       []string `json:"categories"`
	Personalizations []struct {
		To []struct {
			Email string `json:"email"`
		} `json:"to"`
		CustomArgs          map[string]any `json:"custom_args"`
		DynamicTemplateData map[string]any `json:"dynamic_template_data"`
		SendAt              int64          `json:"send_at"`
	} `json:"personalizations"`
	SendAt int64 `json:"send_at"`
}

// check validates a body as SendGrid would, returning SendGrid-style
// errors.
func (s *Server) check(body []byte) (Request, []apiError) {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return Request{}, []apiError{{Message: "Bad Request", Field: field("")}}
	}
	var w wireRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return Request{}, []apiError{{Message: "Bad Request", Field: field("")}}
	}
	sch := s.schemas[0]
	if strings.HasPrefix(w.TemplateID, "d-") {
		sch = s.schemas[1]
	}
	var errs []apiError
	if err := sch.Validate(inst); err != nil {
		if ve, ok := err.(*jsonschema.ValidationError); ok {
			p := message.NewPrinter(language.English)
			var walk func(e *jsonschema.ValidationError)
			walk = func(e *jsonschema.ValidationError) {
				if len(e.Causes) == 0 {
					errs = append(errs, apiError{Message: e.ErrorKind.LocalizedString(p), Field: field(strings.Join(e.InstanceLocation, "."))})
				}
				for _, c := range e.Causes {
					walk(c)
				}
			}
			walk(ve)
		} else {
			errs = append(errs, apiError{Message: err.Error()})
		}
	}
	if len(s.opts.Templates) > 0 && w.TemplateID != "" {
		found := false
		for _, t := range s.opts.Templates {
			found = found || t == w.TemplateID
		}
		if !found {
			errs = append(errs, apiError{Message: "The template_id must be a valid GUID, you provided '" + w.TemplateID + "'.", Field: field("template_id")})
		}
	}
	recipients := 0
	req := Request{TemplateID: w.TemplateID, From: w.From.Email, Categories: w.Categories}
	limit := s.opts.Now().Add(72 * time.Hour).Unix()
	if w.SendAt > limit {
		errs = append(errs, apiError{Message: "send_at can not be more than 72 hours in the future", Field: field("send_at")})
	}
	for i, p := range w.Personalizations {
		pz := Personalization{CustomArgs: map[string]string{}, Data: p.DynamicTemplateData}
		for j, to := range p.To {
			recipients++
			pz.To = append(pz.To, to.Email)
			if s.opts.RejectDomain != "" && strings.HasSuffix(to.Email, "@"+s.opts.RejectDomain) {
				errs = append(errs, apiError{Message: "Does not contain a valid address.", Field: field(fmt.Sprintf("personalizations.%d.to.%d.email", i, j))})
			}
		}
		size := 0
		for k, v := range p.CustomArgs {
			sv, ok := v.(string)
			if !ok {
				errs = append(errs, apiError{Message: "Custom args values must be strings.", Field: field(fmt.Sprintf("personalizations.%d.custom_args.%s", i, k))})
			}
			size += len(k) + len(sv)
			pz.CustomArgs[k] = sv
		}
		if size > 10000 {
			errs = append(errs, apiError{Message: "Custom args are limited to 10,000 bytes.", Field: field(fmt.Sprintf("personalizations.%d.custom_args", i))})
		}
		if p.SendAt > limit {
			errs = append(errs, apiError{Message: "send_at can not be more than 72 hours in the future", Field: field(fmt.Sprintf("personalizations.%d.send_at", i))})
		}
		if p.DynamicTemplateData != nil && !strings.HasPrefix(w.TemplateID, "d-") {
			errs = append(errs, apiError{Message: "dynamic_template_data needs a dynamic template_id", Field: field(fmt.Sprintf("personalizations.%d.dynamic_template_data", i))})
		}
		req.Personalizations = append(req.Personalizations, pz)
	}
	if recipients > 1000 {
		errs = append(errs, apiError{Message: "The recipients total must be at most 1000.", Field: field("personalizations")})
	}
	return req, errs
}
