// Command microtrigger turns website and app micro-actions on Kafka into
// well-timed, capped, consented emails. See README.md.
package main

import (
	"context"
	"embed"
	"io/fs"
	"os"
	"os/signal"
	"syscall"

	// Quiet hours and caps use schema/zoneinfo. This database is for CEL's
	// zone-taking functions (getHours("Europe/Berlin")), which call
	// time.LoadLocation: it serves them where the host has none.
	_ "time/tzdata"

	"github.com/microtrigger/microtrigger/internal/cli"
)

//go:embed testdata/rules testdata/templates testdata/events/sample.jsonl
var assets embed.FS

// version is set by the linker alone (`make build`: go build -ldflags
// "-X main.version=$(git describe --tags --always --dirty)"); nothing
// writes it at run time. Empty, --version prints the module version or the
// VCS revision the go command recorded.
var version string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rules, _ := fs.Sub(assets, "testdata/rules")
	templates, _ := fs.Sub(assets, "testdata/templates")
	sample, _ := assets.ReadFile("testdata/events/sample.jsonl")
	os.Exit(cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, cli.Assets{Rules: rules, Templates: templates, Sample: sample, Version: version}))
}
