package localmail

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink/render"
)

// Console prints emails to a writer, one block per email. The recipient's
// address is masked.
type Console struct {
	mu sync.Mutex
	w  io.Writer
}

// NewConsole returns a console transport writing to w.
func NewConsole(w io.Writer) *Console { return &Console{w: w} }

// Write prints m.
func (c *Console) Write(m *render.Message) error {
	var b strings.Builder
	fmt.Fprintf(&b, "── email to %s · %s (trigger %s, step %s",
		schema.MaskEmail(m.To.Email), m.CustomArgs[render.ArgTemplate], m.CustomArgs[render.ArgTrigger], m.CustomArgs[render.ArgStep])
	if v := m.CustomArgs[render.ArgVariant]; v != "" {
		fmt.Fprintf(&b, ", variant %s", v)
	}
	fmt.Fprintf(&b, ") · command %s\nSubject: %s\n\n%s\n", m.CommandID, m.Subject, strings.TrimRight(m.Text, "\n"))
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := io.WriteString(c.w, b.String())
	if err != nil {
		return fmt.Errorf("console transport: %w", err)
	}
	return nil
}

// Dir writes one .eml file per email, named after the command id, so that
// writing the same command twice leaves one file.
type Dir struct {
	dir string
	now func() time.Time
}

// NewDir returns a file transport writing into dir (created if missing).
// now stamps the Date header; nil means the wall clock.
func NewDir(dir string, now func() time.Time) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("file transport: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Dir{dir: dir, now: now}, nil
}

// Path is where Write puts the email of a command.
func (d *Dir) Path(commandID string) string {
	return filepath.Join(d.dir, safeName(commandID)+".eml")
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

// Write writes m as an .eml file, atomically (a temporary file renamed).
func (d *Dir) Write(m *render.Message) error {
	b, err := Format(m, d.now())
	if err != nil {
		return err
	}
	path := d.Path(m.CommandID)
	tmp, err := os.CreateTemp(d.dir, ".tmp-*.eml")
	if err != nil {
		return fmt.Errorf("file transport: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("file transport: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("file transport: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("file transport: %w", err)
	}
	return nil
}

// Format renders m as an RFC 5322 message with a multipart/alternative
// body: a text/plain part then a text/html part, both UTF-8 and
// quoted-printable.
func Format(m *render.Message, date time.Time) ([]byte, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	hdr := func(k, v string) { fmt.Fprintf(&buf, "%s: %s\r\n", k, v) }
	from := mail.Address{Name: m.From.Name, Address: m.From.Email}
	to := mail.Address{Name: m.To.Name, Address: m.To.Email}
	if _, err := mail.ParseAddress(to.String()); err != nil {
		return nil, fmt.Errorf("file transport: recipient %s: %w", schema.MaskEmail(m.To.Email), err)
	}
	hdr("From", from.String())
	hdr("To", to.String())
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	hdr("Date", date.UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+safeName(m.CommandID)+"@microtrigger.invalid>")
	hdr("MIME-Version", "1.0")
	for _, k := range []string{render.ArgCommandID, render.ArgTrigger, render.ArgStep, render.ArgTemplate, render.ArgVariant} {
		if v := m.CustomArgs[k]; v != "" {
			hdr("X-Microtrigger-"+strings.ReplaceAll(k, "_", "-"), mime.QEncoding.Encode("utf-8", v))
		}
	}
	hdr("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	buf.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(strings.ReplaceAll(part.body, "\n", "\r\n"))); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
