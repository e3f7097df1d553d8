package sendgrid

import (
	"fmt"
	"log/slog"
)

// APIKey is a SendGrid API key. It never shows its value: not through fmt,
// slog, encoding/json or encoding/text.
type APIKey string

const redacted = "[redacted]"

// String implements fmt.Stringer.
func (APIKey) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (APIKey) GoString() string { return redacted }

// Format implements fmt.Formatter, so %s, %v, %q and %x all redact.
func (APIKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, redacted) }

// LogValue implements slog.LogValuer.
func (APIKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText implements encoding.TextMarshaler.
func (APIKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }
