package backtest

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/schema/zoneinfo"
)

// Config configures a backtest. Zero fields take the documented defaults.
type Config struct {
	// Pack is the rule pack to try, with its policy. Required.
	Pack *rules.Pack
	// Rules names Pack in the report (its directory).
	Rules string
	// Compare, when set, is a second pack run over the same input; its
	// send-commands and suppressions go to OutDir/compare and the report
	// compares the two. CompareRules names it.
	Compare      *rules.Pack
	CompareRules string

	// File is a JSONL file of events, one per line ("-": standard input).
	// Exactly one of File and Topic is required.
	File string
	// Topic is a topic of events read with Kafka. Every partition is read
	// from the offset of From (by record timestamp; the start without From)
	// to the offset of To (the end offsets at the start without To), with
	// read_committed isolation, and the partitions are merged by event
	// time. Nothing is committed and nothing is produced.
	Topic string
	// Kafka holds the client options for Topic (seed brokers, TLS, SASL),
	// passed to franz-go unchanged.
	Kafka []kgo.Opt

	// From and To bound the range by event time, both inclusive; zero
	// means unbounded. Timers due at or before To fire at the end; without
	// To, those due at or before the last event's time.
	From, To time.Time

	// OutDir receives commands.jsonl, suppressions.jsonl, report.json and
	// report.html (and compare/ with Compare). Created if missing.
	// Required.
	OutDir string

	// ConversionEvent is the track event that counts as a conversion.
	// Default "Order Completed".
	ConversionEvent string
	// ConversionWindow is how long after a send a conversion counts.
	// Default 7 days.
	ConversionWindow time.Duration

	// Grace overrides the pack's grace when non-nil.
	Grace *time.Duration
	// Workers is how many users' shards run in parallel, per pack. The
	// output does not depend on it. Default GOMAXPROCS, at most 8.
	Workers int
	// FlushEvery is how many events a worker applies between two
	// hand-offs of its output; its users' states are written to its store
	// then only when more of them changed than its share of CacheUsers.
	// Default 100000.
	FlushEvery int
	// CacheUsers is how many decoded user states the workers of a pack keep
	// in memory, in all; past that, changed states are written to the
	// stores and read back when needed. Default 200000 (about 10 KB each with the example pack).
	CacheUsers int
	// StateDir holds the workers' stores; they are deleted when Run
	// returns. Default a new directory under os.TempDir().
	StateDir string
	// InMemory keeps the workers' stores in memory instead (small inputs,
	// tests).
	InMemory bool

	// Progress, when set, is called every ProgressInterval from a
	// goroutine of its own, and once more at the end.
	Progress         func(Progress)
	ProgressInterval time.Duration // default 1s

	// Logger receives warnings (rule evaluation errors, by position).
	// Default discard.
	Logger *slog.Logger

	// Zones is the time zone database of quiet hours and caps, shared by
	// both packs' engines. Default a new zoneinfo.DB: the database embedded
	// in the binary, as in the live processor, so that a backtest decides
	// as production would whatever zone files this machine has.
	Zones *zoneinfo.DB
}

// Defaults of Config.
const (
	DefaultConversionEvent  = "Order Completed"
	DefaultConversionWindow = 7 * 24 * time.Hour
	DefaultFlushEvery       = 100000
	DefaultCacheUsers       = 200000
)

func (c Config) withDefaults() (Config, error) {
	if c.ConversionEvent == "" {
		c.ConversionEvent = DefaultConversionEvent
	}
	if c.ConversionWindow == 0 {
		c.ConversionWindow = DefaultConversionWindow
	}
	if c.Workers <= 0 {
		c.Workers = min(runtime.GOMAXPROCS(0), 8)
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = DefaultFlushEvery
	}
	if c.CacheUsers <= 0 {
		c.CacheUsers = DefaultCacheUsers
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Zones == nil {
		c.Zones = zoneinfo.New()
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	if c.Pack == nil {
		errs = append(errs, errors.New("no rule pack"))
	}
	switch {
	case c.File == "" && c.Topic == "":
		errs = append(errs, errors.New("no input: set a file or a topic"))
	case c.File != "" && c.Topic != "":
		errs = append(errs, errors.New("two inputs: set a file or a topic, not both"))
	case c.Topic != "" && len(c.Kafka) == 0:
		errs = append(errs, errors.New("no Kafka options for the topic: at least kgo.SeedBrokers is needed"))
	}
	if c.OutDir == "" {
		errs = append(errs, errors.New("no output directory"))
	}
	if !c.From.IsZero() && !c.To.IsZero() && c.To.Before(c.From) {
		errs = append(errs, fmt.Errorf("the range ends (%s) before it starts (%s)", c.To.UTC().Format(time.RFC3339), c.From.UTC().Format(time.RFC3339)))
	}
	if c.ConversionWindow < 0 {
		errs = append(errs, errors.New("negative conversion window"))
	}
	if c.Grace != nil && *c.Grace < 0 {
		errs = append(errs, errors.New("negative grace"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("backtest config: %w", err)
	}
	return nil
}
