package sendgrid

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/microtrigger/microtrigger/schema"
)

// ErrUnauthorized is returned by Send when SendGrid answers 401 or 403: the
// API key, its scopes or the sender identity are wrong.
var ErrUnauthorized = errors.New("sendgrid: unauthorized")

// APIError is an answer that accepted nothing.
type APIError struct {
	Status   int
	Messages []string // SendGrid's error messages, addresses masked
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("sendgrid answered %d %s", e.Status, http.StatusText(e.Status))
	if len(e.Messages) > 0 {
		s += ": " + strings.Join(e.Messages, "; ")
	}
	return s
}

// RetryError is an attempt worth repeating: a 429, a 5xx, or a connection
// that failed before the request was written. Wait is how long the answer
// asked to wait (0: use backoff).
type RetryError struct {
	Status int // 0 for a connection failure
	Wait   time.Duration
	Err    error
}

func (e *RetryError) Error() string { return e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// UnknownError is an attempt whose request was written but whose answer
// never came: SendGrid may have accepted it.
type UnknownError struct{ Err error }

func (e *UnknownError) Error() string {
	return "no answer after the request was sent: " + e.Err.Error()
}
func (e *UnknownError) Unwrap() error { return e.Err }

// errorBody is SendGrid's JSON error document.
type errorBody struct {
	Errors []struct {
		Message string `json:"message"`
		Field   any    `json:"field"`
	} `json:"errors"`
}

const maxMessages = 5

// parseErrors extracts SendGrid's error messages from a response body.
func parseErrors(b []byte) []string {
	var eb errorBody
	if err := json.Unmarshal(b, &eb); err != nil {
		return nil
	}
	var out []string
	for i, e := range eb.Errors {
		if i == maxMessages {
			out = append(out, fmt.Sprintf("and %d more", len(eb.Errors)-i))
			break
		}
		m := e.Message
		if f, ok := e.Field.(string); ok && f != "" {
			m += " (field " + f + ")"
		}
		out = append(out, Sanitize(m))
	}
	return out
}

var emailLike = regexp.MustCompile(`[^\s<>()\[\]"',;:]+@[^\s<>()\[\]"',;:]+`)

// Sanitize masks every address in s and bounds its length, so that a
// provider's message can go into logs and dead-letter headers.
func Sanitize(s string) string {
	s = emailLike.ReplaceAllStringFunc(s, schema.MaskEmail)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
