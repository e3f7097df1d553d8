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

// Assets are what main compiles into the binary: the example rule pack, its
// templates and the sample clickstream, so `microtrigger run` needs nothing
// on disk, and the version stamp.
type Assets struct {
	Rules     fs.FS // the example rule pack (a directory of YAML files)
	Templates fs.FS // the templates directory
	Sample    []byte
	// Version is what --version prints when set (main's version, stamped
	// by the linker); empty reads the build information the go command
	// recorded (module version or VCS revision).
	Version string
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
	exited := -1
	app.UsageWriter(untilExit{stdout, &exited})
	app.ErrorWriter(untilExit{stderr, &exited})
	app.Terminate(func(code int) {
		if exited < 0 {
			exited = code
		}
	})
	app.DefaultEnvars()
	app.HelpFlag.Short('h')
	app.Version(versionLine(assets.Version))
	app.VersionFlag.NoEnvar()
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

// untilExit passes on what kingpin writes until it has asked to exit
// (--help, --version): Terminate does not stop the parse (Main returns
// instead), which would otherwise go on to print the usage again.
type untilExit struct {
	w      io.Writer
	exited *int
}

func (u untilExit) Write(p []byte) (int, error) {
	if *u.exited >= 0 {
		return len(p), nil
	}
	return u.w.Write(p)
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
