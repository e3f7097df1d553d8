package localmail

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/sink/render"
)

func message() *render.Message {
	return &render.Message{
		CommandID: "c0ffee", To: render.Address{Email: "ada@example.com"},
		From:       render.Address{Email: "hello@shop.example", Name: "Example Shop"},
		CustomArgs: map[string]string{"command_id": "c0ffee", "trigger": "cart-abandonment", "step": "1", "template": "cart-reminder"},
		Subject:    "Ton panier t'attend — 10 % de réduction",
		Text:       "Bonjour,\nTom & Jerry\n",
		HTML:       "<p>Bonjour,</p><p>Tom &amp; Jerry</p>\n",
	}
}

func TestConsoleMasks(t *testing.T) {
	var b bytes.Buffer
	if err := NewConsole(&b).Write(message()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "ada@") || !strings.Contains(out, "a***@example.com") || !strings.Contains(out, "Subject: Ton panier") || !strings.Contains(out, "Tom & Jerry") {
		t.Fatalf("console output:\n%s", out)
	}
}

func TestFileIsAValidEmail(t *testing.T) {
	dir := t.TempDir()
	d, err := NewDir(dir, func() time.Time { return time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) })
	if err != nil {
		t.Fatal(err)
	}
	m := message()
	if err := d.Write(m); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(m); err != nil { // same command: same file
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d files", len(entries))
	}
	f, err := os.Open(d.Path("c0ffee"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	msg, err := mail.ReadMessage(f)
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subj != m.Subject || msg.Header.Get("To") != "<ada@example.com>" || msg.Header.Get("Date") != "Mon, 02 Mar 2026 09:00:00 +0000" {
		t.Fatalf("headers %v (subject %q)", msg.Header, subj)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %s %v", mt, err)
	}
	r := multipart.NewReader(msg.Body, params["boundary"])
	var types, bodies []string
	for {
		p, err := r.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		types = append(types, p.Header.Get("Content-Type"))
		bodies = append(bodies, string(b))
	}
	if strings.Join(types, ",") != "text/plain; charset=utf-8,text/html; charset=utf-8" ||
		bodies[0] != "Bonjour,\r\nTom & Jerry\r\n" || !strings.Contains(bodies[1], "Tom &amp; Jerry") {
		t.Fatalf("parts %q %q", types, bodies)
	}
}
