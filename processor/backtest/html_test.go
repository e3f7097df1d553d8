package backtest

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/internal/tooltest"
)

// chromium returns the headless browser the HTML test runs, or skips the
// test when there is none (.ci/run installs Debian's chromium).
func chromium(t *testing.T) string {
	t.Helper()
	return tooltest.Need(t, "chromium", "apt-get install chromium: the HTML report is checked in a browser", "/usr/bin/chromium")
}

// browse runs headless chromium on a file with extra flags and returns its
// stdout and stderr.
func browse(t *testing.T, bin, page string, flags ...string) (stdout, stderr []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--hide-scrollbars",
	}, flags...)
	args = append(args, "file://"+page)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, errb.Bytes())
	}
	return out.Bytes(), errb.Bytes()
}

// TestHTMLInBrowser opens the golden report.html (with its comparison) in
// headless chromium: the page's script must find every chart rendered
// (non-empty geometry) and write its marker, nothing may reach the console,
// and a screenshot must show the charts' colours.
func TestHTMLInBrowser(t *testing.T) {
	bin := chromium(t)
	out := t.TempDir()
	if _, err := Run(context.Background(), goldenConfig(t, out)); err != nil {
		t.Fatal(err)
	}
	page, err := filepath.Abs(filepath.Join(out, ReportHTMLFile))
	if err != nil {
		t.Fatal(err)
	}

	dom, logs := browse(t, bin, page, "--enable-logging=stderr", "--v=0", "--dump-dom")
	mark := regexp.MustCompile(`<div id="render-check"[^>]*>`).Find(dom)
	if mark == nil {
		t.Fatalf("no render-check marker in the DOM:\n%.2000s", dom)
	}
	// Seven charts: sends per day, effect, funnel, time to conversion,
	// suppressions, and the comparison's two.
	for _, want := range []string{`data-status="ok"`, `data-charts="7"`, `data-rendered="7"`} {
		if !bytes.Contains(mark, []byte(want)) {
			t.Errorf("render-check %s, want %s", mark, want)
		}
	}
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.Contains(line, ":CONSOLE") {
			t.Errorf("console output: %s", line)
		}
	}

	shot := filepath.Join(t.TempDir(), "report.png")
	browse(t, bin, page, "--window-size=1280,2400", "--screenshot="+shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	b := img.Bounds()
	nonWhite := 0
	palette := map[[3]uint32]int{{0x4e, 0x79, 0xa7}: 0, {0xf2, 0x8e, 0x2b}: 0, {0x59, 0xa1, 0x4f}: 0}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			if r < 250 || g < 250 || bl < 250 {
				nonWhite++
			}
			if _, ok := palette[[3]uint32{r, g, bl}]; ok {
				palette[[3]uint32{r, g, bl}]++
			}
		}
	}
	if total := b.Dx() * b.Dy(); nonWhite < total/50 {
		t.Errorf("screenshot nearly blank: %d of %d pixels not white", nonWhite, total)
	}
	for c, n := range palette {
		// Bars of the sends-per-day, funnel and histogram charts.
		if n < 500 {
			t.Errorf("only %d pixels of chart colour #%02x%02x%02x in the screenshot", n, c[0], c[1], c[2])
		}
	}
}

// TestHTMLSelfContained checks that the page loads nothing: no external
// script, style, image, font or link target.
func TestHTMLSelfContained(t *testing.T) {
	out := t.TempDir()
	if _, err := Run(context.Background(), goldenConfig(t, out)); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(out, ReportHTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	// The SVG namespace is a name, not a resource.
	s := strings.ReplaceAll(string(page), `xmlns="http://www.w3.org/2000/svg"`, "")
	for _, bad := range []string{"http:", "https:", "//", "src=", "href=", "<link", "@import", "url(", "<iframe", "<img"} {
		if bad == "//" {
			// Allowed in text, not in attributes.
			if regexp.MustCompile(`=\s*"//`).MatchString(s) {
				t.Errorf("protocol-relative URL in the page")
			}
			continue
		}
		if strings.Contains(s, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
	// No user id, email or value from the events.
	for _, user := range []string{"hal@example.com", `"hal"`, ">hal<", "zed@"} {
		if strings.Contains(s, user) {
			t.Errorf("the page contains %q", user)
		}
	}
}
