package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/microtrigger/microtrigger/internal/ratelimitlog"
)

// Exit codes, the same for every command (promtool's, and one for an
// interruption).
const (
	// ExitOK: the command did what it was asked. A server (processor,
	// sink, broker, run --follow) stopped by SIGINT or SIGTERM exits 0 too:
	// that is how it is meant to stop.
	ExitOK = 0
	// ExitFailures: it ran and failed, or found failures: check errors,
	// failing rule tests, rules that do not load, brokers unreachable, a
	// topic that is not as it must be.
	ExitFailures = 1
	// ExitUsage: the command line cannot work as given, and nothing was
	// done: an unknown, missing or invalid flag or argument, or a file or
	// directory a flag names that is not there.
	ExitUsage = 2
	// ExitInterrupted: SIGINT or SIGTERM stopped a command before it was
	// done (erase, backtest, rules test, run without --follow): what it
	// was to produce is not there, or not all of it (128 + SIGINT, as a
	// shell reports an interrupted program).
	ExitInterrupted = 130
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
	level          slog.Level // logLevel, parsed
	maxSimilar     int
	log, quiet     *slog.Logger
	limiters       []*ratelimitlog.Handler
	// asked is set when --help or --version was given.
	asked bool
	// action is the selected command's body, set by its kingpin Action.
	action func(ctx context.Context) error
}

// logger is the log of the command: to stderr, at --log.level, every
// message at most --log.max-similar times per 10s when a warning or an
// error (the rest counted in one line after).
func (e *env) logger() *slog.Logger {
	if e.log == nil {
		e.log = e.newLogger(e.level)
	}
	return e.log
}

// quietLogger is the logger of commands whose stdout is the product (run):
// warnings and errors only, unless a level was asked for explicitly.
func (e *env) quietLogger() *slog.Logger {
	if e.level != slog.LevelInfo {
		return e.logger()
	}
	if e.quiet == nil {
		e.quiet = e.newLogger(slog.LevelWarn)
	}
	return e.quiet
}

func (e *env) newLogger(level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(e.stderr, opts)
	if e.logFormat == "json" {
		h = slog.NewJSONHandler(e.stderr, opts)
	}
	if e.maxSimilar > 0 {
		rl := ratelimitlog.New(h, ratelimitlog.Config{Burst: e.maxSimilar, Interval: 10 * time.Second})
		e.limiters = append(e.limiters, rl)
		h = rl
	}
	return slog.New(h)
}

// flushLogs writes the counts of the log lines suppressed and not yet
// reported.
func (e *env) flushLogs() {
	for _, rl := range e.limiters {
		rl.Flush(context.Background())
	}
}

// parseLevel reads --log.level; it refuses what is not one of the four
// levels, rather than logging at some other level than the one asked for.
func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("--log.level %q: want debug, info, warn or error", s)
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
	app := newApp(e)
	exited := -1
	app.UsageWriter(untilExit{stdout, &exited})
	app.ErrorWriter(untilExit{stderr, &exited})
	app.Terminate(func(code int) {
		if exited < 0 {
			exited = code
		}
	})

	// Variables of the former names first: a required flag set by one
	// would otherwise be reported missing.
	if pc, _ := app.ParseContext(args); pc != nil && pc.SelectedCommand != nil {
		if renamed := renamedEnvars(app, pc.SelectedCommand.FullCommand(), os.Getenv); len(renamed) > 0 {
			for _, r := range renamed {
				fmt.Fprintf(stderr, "microtrigger %s: %s\n", pc.SelectedCommand.FullCommand(), r)
			}
			return ExitUsage
		}
	}
	cmd, err := app.Parse(args)
	if exited >= 0 {
		switch {
		case exited == 0 && errors.Is(err, kingpin.ErrCommandNotSpecified) && !e.asked:
			return ExitUsage // no command: kingpin printed the usage
		case exited == 0:
			return ExitOK // --help or --version printed
		}
		return ExitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "microtrigger: %v\n", err)
		fmt.Fprintf(stderr, "Try 'microtrigger --help'.\n")
		return ExitUsage
	}
	if e.level, err = parseLevel(e.logLevel); err != nil {
		fmt.Fprintf(stderr, "microtrigger: %v\n", err)
		fmt.Fprintf(stderr, "Try 'microtrigger --help'.\n")
		return ExitUsage
	}
	if e.maxSimilar < 0 {
		fmt.Fprintf(stderr, "microtrigger: --log.max-similar %d: want 0 (no limit) or more\n", e.maxSimilar)
		fmt.Fprintf(stderr, "Try 'microtrigger --help'.\n")
		return ExitUsage
	}
	if e.action == nil {
		app.Usage(args)
		return ExitUsage
	}
	err = e.action(ctx)
	e.flushLogs()
	var f failure
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &f):
		return f.code
	case ctx.Err() != nil:
		// A server returns nil when stopped; a command that returns an
		// error once stopped was stopped before it was done.
		fmt.Fprintf(stderr, "microtrigger %s: interrupted before it was done (%v): %v\n", cmd, context.Cause(ctx), err)
		return ExitInterrupted
	}
	fmt.Fprintf(stderr, "microtrigger %s: %v\n", cmd, err)
	return ExitFailures
}

// newApp declares every command and flag, each flag bound to its
// environment variable.
func newApp(e *env) *kingpin.Application {
	app := kingpin.New("microtrigger", "Behavioral email triggers on Kafka: micro-actions in, well-timed, capped, consented emails out.")
	app.HelpFlag.Short('h')
	app.HelpFlag.PreAction(e.ask)
	app.Version(versionLine(e.assets.Version))
	app.VersionFlag.PreAction(e.ask)
	shared(app.Flag("log.format", "Log format: text or json."), "log.format").Default("text").EnumVar(&e.logFormat, "text", "json")
	shared(app.Flag("log.level", "Log level: debug, info, warn or error."), "log.level").Default("info").StringVar(&e.logLevel)
	shared(app.Flag("log.max-similar", "Most warnings and errors with one message logged per 10s; the rest are counted in one line after (0: no limit)."), "log.max-similar").
		Default("10").IntVar(&e.maxSimilar)
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
	bindEnvars(app)
	return app
}

// ask records that --help or --version was given.
func (e *env) ask(*kingpin.ParseContext) error {
	e.asked = true
	return nil
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
