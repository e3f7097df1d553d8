package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"

	"github.com/alecthomas/kingpin/v2"
)

// Exit codes, as promtool's.
const (
	ExitOK       = 0
	ExitFailures = 1 // check errors, failing tests, runtime failures
	ExitUsage    = 2
)

// Assets are the files compiled into the binary: the example rule pack, its
// templates and the sample clickstream, so `microtrigger run` needs nothing
// on disk.
type Assets struct {
	Rules     fs.FS // the example rule pack (a directory of YAML files)
	Templates fs.FS // the templates directory
	Sample    []byte
}

// failure is an error whose message has been printed already; it only
// carries the exit code.
type failure struct{ code int }

func (f failure) Error() string { return fmt.Sprintf("exit %d", f.code) }

// env is what every command shares.
type env struct {
	stdout, stderr io.Writer
	assets         Assets
	logFormat      string
	logLevel       string
	// action is the selected command's body, set by its kingpin Action.
	action func(ctx context.Context) error
}

func (e *env) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(e.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if e.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

// quietLogger is the logger of commands whose stdout is the product (run):
// warnings and errors only, unless a level was asked for explicitly.
func (e *env) quietLogger() *slog.Logger {
	if e.logLevel == "info" {
		l := *e
		l.logLevel = "warn"
		return l.logger()
	}
	return e.logger()
}

// selects returns a kingpin action that makes fn the command to run.
func (e *env) selects(fn func(ctx context.Context) error) kingpin.Action {
	return func(*kingpin.ParseContext) error {
		e.action = fn
		return nil
	}
}

// Main runs the command line args and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, assets Assets) int {
	e := &env{stdout: stdout, stderr: stderr, assets: assets}
	app := kingpin.New("microtrigger", "Behavioral email triggers on Kafka: micro-actions in, well-timed, capped, consented emails out.")
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	exited := -1
	app.Terminate(func(code int) {
		if exited < 0 {
			exited = code
		}
	})
	app.DefaultEnvars()
	app.HelpFlag.Short('h')
	app.Flag("log.format", "Log format: text or json.").Default("text").EnumVar(&e.logFormat, "text", "json")
	app.Flag("log.level", "Log level: debug, info, warn or error.").Default("info").StringVar(&e.logLevel)

	for _, register := range []func(*kingpin.Application, *env){
		registerRun,
		registerBroker,
		registerProcessor,
		registerSink,
		registerRules,
		registerBacktest,
		registerErase,
	} {
		register(app, e)
	}

	_, err := app.Parse(args)
	if exited >= 0 {
		// --help or --version printed and asked to exit.
		if exited == 0 {
			return ExitOK
		}
		return ExitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "microtrigger: %v\n", err)
		fmt.Fprintf(stderr, "Try 'microtrigger --help'.\n")
		return ExitUsage
	}
	if e.action == nil {
		app.Usage(args)
		return ExitUsage
	}
	if err := e.action(ctx); err != nil {
		var f failure
		if errors.As(err, &f) {
			return f.code
		}
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return ExitOK // interrupted: a normal way to stop a server
		}
		fmt.Fprintf(stderr, "microtrigger: %v\n", err)
		return ExitFailures
	}
	return ExitOK
}

// usageError reports a usage problem with a command's flags and returns
// the usage exit code.
func (e *env) usageError(cmd, format string, args ...any) error {
	fmt.Fprintf(e.stderr, "microtrigger %s: %s\n", cmd, fmt.Sprintf(format, args...))
	fmt.Fprintf(e.stderr, "Try 'microtrigger %s --help'.\n", cmd)
	return failure{ExitUsage}
}

// readSecret reads a secret from a file, or from an environment variable when
// path is empty. Secrets never come from flag values: those show in ps and in
// shell history.
func readSecret(path, envVar string) (string, error) {
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		return trimNewline(string(b)), nil
	}
	return os.Getenv(envVar), nil
}

func trimNewline(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}
