package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/microtrigger/microtrigger/processor/backtest"
	"github.com/microtrigger/microtrigger/processor/backtest/report"
	"github.com/microtrigger/microtrigger/processor/rules"
)

type backtestFlags struct {
	rules, compare, templates string
	input, topic              string
	from, to                  string
	out                       string
	conversionEvent           string
	conversionWindow          string
	grace                     string
	workers                   int
	stateDir                  string
	progress                  string
}

func registerBacktest(app *kingpin.Application, e *env) {
	cmd := app.Command("backtest", "Replay history through candidate rules: what would have been sent, suppressed and converted. Nothing is sent.")
	var f backtestFlags
	var k kafkaFlags
	cmd.Flag("rules", "Rule pack directory to try.").Required().StringVar(&f.rules)
	cmd.Flag("input", "JSONL file of events, one Segment envelope per line (--input=- for standard input).").StringVar(&f.input)
	cmd.Flag("topic", "Topic to read instead of a file (with --brokers).").StringVar(&f.topic)
	addKafkaFlags(cmd, &k, "")
	cmd.Flag("from", "Start of the range, RFC 3339 (inclusive; default: the start of the input).").StringVar(&f.from)
	cmd.Flag("to", "End of the range, RFC 3339 (inclusive; timers due by then fire; default: the end of the input).").StringVar(&f.to)
	cmd.Flag("out", "Output directory: commands.jsonl, suppressions.jsonl, report.json, report.html.").Required().StringVar(&f.out)
	cmd.Flag("compare", "Second rule pack directory to run over the same input, side by side (output in OUT/compare).").StringVar(&f.compare)
	cmd.Flag("conversion-event", "Track event that counts as a conversion.").Default(backtest.DefaultConversionEvent).StringVar(&f.conversionEvent)
	cmd.Flag("conversion-window", "How long after a send a conversion counts (90m, 12h, 7d, 2w).").Default("7d").StringVar(&f.conversionWindow)
	cmd.Flag("templates", "Template directory checked against the packs (default: RULES/../templates when present).").StringVar(&f.templates)
	cmd.Flag("grace", "Event-time grace (default: the pack's policy.grace).").StringVar(&f.grace)
	cmd.Flag("workers", "Users are split over this many workers per pack; the output does not depend on it (default: the number of CPUs, at most 8).").IntVar(&f.workers)
	cmd.Flag("state-dir", "Where the replay keeps its temporary state (default: the system's temporary directory).").StringVar(&f.stateDir)
	cmd.Flag("progress", "Progress on stderr: auto (a bar on a terminal, else a line every 5s), bar, lines or none.").Default("auto").EnumVar(&f.progress, "auto", "bar", "lines", "none")
	cmd.Action(e.selects(func(ctx context.Context) error {
		return e.backtest(ctx, &f, &k)
	}))
}

func (e *env) backtest(ctx context.Context, f *backtestFlags, k *kafkaFlags) error {
	cfg := backtest.Config{
		Rules: f.rules, CompareRules: f.compare, File: f.input, Topic: f.topic,
		OutDir: f.out, ConversionEvent: f.conversionEvent, Workers: f.workers, StateDir: f.stateDir,
		Logger: e.logger(),
	}
	switch {
	case f.input == "" && f.topic == "":
		return e.usageError("backtest", "no input: give --input FILE.jsonl or --topic T with --brokers B")
	case f.input != "" && f.topic != "":
		return e.usageError("backtest", "--input and --topic both given: give one")
	}
	if f.topic != "" {
		opts, err := k.opts()
		if err != nil {
			return e.usageError("backtest", "%v", err)
		}
		cfg.Kafka = opts
	}
	var err error
	if cfg.From, err = parseTime("--from", f.from); err != nil {
		return e.usageError("backtest", "%v", err)
	}
	if cfg.To, err = parseTime("--to", f.to); err != nil {
		return e.usageError("backtest", "%v", err)
	}
	if !cfg.From.IsZero() && !cfg.To.IsZero() && cfg.To.Before(cfg.From) {
		return e.usageError("backtest", "--to is before --from")
	}
	if cfg.ConversionWindow, err = rules.ParseDuration(f.conversionWindow); err != nil || cfg.ConversionWindow == 0 {
		if err == nil {
			err = errors.New("must be positive")
		}
		return e.usageError("backtest", "--conversion-window: %v", err)
	}
	if f.grace != "" {
		g, err := rules.ParseDuration(f.grace)
		if err != nil {
			return e.usageError("backtest", "--grace: %v", err)
		}
		cfg.Grace = &g
	}
	for _, d := range []struct{ flag, path, what string }{
		{"--rules", f.rules, aRulePack},
		{"--compare", f.compare, aRulePack},
		{"--templates", f.templates, aTemplates},
		{"--state-dir", f.stateDir, "an existing directory for the replay's temporary state"},
	} {
		if d.path != "" {
			if err := e.needDir("backtest", d.flag, d.path, d.what); err != nil {
				return err
			}
		}
	}
	if f.input != "" && f.input != "-" {
		if err := e.needFile("backtest", "--input", f.input, aJSONLInput); err != nil {
			return err
		}
	}
	if cfg.Pack, err = e.loadPack(f.rules, f.templates); err != nil {
		return err
	}
	if f.compare != "" {
		if cfg.Compare, err = e.loadPack(f.compare, f.templates); err != nil {
			return err
		}
	}
	switch mode := f.progress; {
	case mode == "none":
	case mode == "bar" || (mode == "auto" && isTerminal(e.stderr)):
		cfg.Progress = (&backtest.ProgressPrinter{W: e.stderr, Terminal: true}).Print
		cfg.ProgressInterval = 200 * time.Millisecond
	default:
		cfg.Progress = (&backtest.ProgressPrinter{W: e.stderr, Every: 5 * time.Second}).Print
	}

	res, err := backtest.Run(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s holds no complete output of this run: %w", f.out, err)
		}
		return err
	}
	if err := report.WriteSummary(e.stdout, res.Report); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nwrote")
	for _, name := range res.Files {
		fmt.Fprintf(e.stdout, " %s", filepath.Join(f.out, name))
	}
	fmt.Fprintln(e.stdout)
	return nil
}

// loadPack loads a rule pack and prints its errors as file:line:col.
func (e *env) loadPack(dir, templates string) (*rules.Pack, error) {
	tmpl, err := templateSet(dir, templates)
	if err != nil {
		return nil, err
	}
	pack, err := rules.Load(os.DirFS(dir), rules.Options{Templates: tmpl})
	if err != nil {
		var list rules.ErrorList
		if !errors.As(err, &list) {
			return nil, fmt.Errorf("load rules %s: %w", dir, err)
		}
		for _, le := range list {
			le.Pos.File = filepath.Join(dir, le.Pos.File)
			fmt.Fprintln(e.stderr, le.Error())
		}
		fmt.Fprintf(e.stderr, "%s: %d error(s)\n", dir, len(list))
		return nil, failure{ExitFailures}
	}
	return pack, nil
}

func parseTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time such as 2026-03-02T09:00:00Z", flag, s)
	}
	return t.UTC(), nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
