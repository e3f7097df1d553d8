package schema_test

import (
	"archive/zip"
	"strings"
	"testing"

	"github.com/microtrigger/microtrigger/schema"
)

// Every zone of the embedded database is a valid user zone, whatever the
// host has.
func TestCheckTimezoneAcceptsEveryEmbeddedZone(t *testing.T) {
	r, err := zip.OpenReader("zoneinfo/zoneinfo.zip")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.File) < 400 {
		t.Fatalf("zoneinfo.zip holds %d zones", len(r.File))
	}
	for _, f := range r.File {
		if err := schema.CheckTimezone(f.Name); err != nil {
			t.Errorf("CheckTimezone(%q): %v", f.Name, err)
		}
	}
}

// Refusals say why without repeating the name: it arrives in events, and
// the message goes to dead letters and logs.
func TestCheckTimezoneRefuses(t *testing.T) {
	t.Setenv("ZONEINFO", "/nonexistent/zoneinfo.zip")
	for _, c := range []struct{ name, msg string }{
		{"", "empty time zone: want an IANA zone name"},
		{"Local", "time zone Local is not an IANA zone name"},
		{"Mars/Olympus", "unknown time zone"},
		{"europe/berlin", "unknown time zone"},
		{"Europe/Berlin\n", "unknown time zone"},
		{"/usr/share/zoneinfo/UTC", "unknown time zone"},
		{"right/UTC", "unknown time zone"},
		{"posixrules", "unknown time zone"},
		{"user-42@example.com", "unknown time zone"},
	} {
		err := schema.CheckTimezone(c.name)
		if err == nil {
			t.Errorf("CheckTimezone(%q) = nil", c.name)
			continue
		}
		if err.Error() != c.msg {
			t.Errorf("CheckTimezone(%q) = %q, want %q", c.name, err, c.msg)
		}
		if c.name != "" && c.name != "Local" && strings.Contains(err.Error(), c.name) {
			t.Errorf("CheckTimezone(%q) echoes the name", c.name)
		}
	}
}
