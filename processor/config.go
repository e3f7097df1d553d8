package processor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"

	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/schema/zoneinfo"
)

// Clock is the processor's source of wall-clock time. Tests and
// `microtrigger run` inject a clock they move themselves.
type Clock interface {
	Now() time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Topics names the topics the processor reads and writes.
type Topics struct {
	Events    string // input; default "events"
	Commands  string // default "send-commands"
	EventsDLQ string // default "events-dlq"
	Changelog string // compacted, co-partitioned with Events; default "processor-changelog"
}

// Config configures a Processor. Zero fields take the documented defaults.
type Config struct {
	// Kafka holds the client options: seed brokers, TLS, SASL. They are
	// passed to franz-go unchanged.
	Kafka []kgo.Opt
	// Group is the consumer group. Default "microtrigger-processor".
	Group string
	// Topics are the topic names.
	Topics Topics
	// Pack is the compiled rule pack.
	Pack *rules.Pack
	// StateDir holds one Pebble store per partition (StateDir/p-N).
	StateDir string
	// Clock is the wall clock (C of DESIGN.md's watermark). Default the
	// system clock.
	Clock Clock
	// Grace overrides the pack's grace when non-nil.
	Grace *time.Duration
	// TickInterval is how often timers are checked when no input arrives.
	// Default 1s.
	TickInterval time.Duration
	// MaxPollRecords bounds a batch. Default 10000.
	MaxPollRecords int
	// ExactlyOnce uses one Kafka transaction per batch. Default true; set
	// DisableExactlyOnce for at-least-once (benchmarks, brokers without
	// transactions).
	DisableExactlyOnce bool
	// TransactionalID identifies this instance's transactional producer;
	// it must be stable across restarts of one instance and unique among
	// instances. Default "microtrigger-processor-" + hostname.
	TransactionalID string
	// TransactionTimeout bounds how long a crashed instance's open
	// transaction blocks readers. Default 10s.
	TransactionTimeout time.Duration
	// StaleStoreAfter discards a partition's store, and rebuilds it from
	// the changelog, when it was last written longer ago than this: by then
	// the changelog may have compacted away deletions it never saw. Keep it
	// below the changelog's delete.retention.ms (Kafka's default: 24h).
	// Default 12h.
	StaleStoreAfter time.Duration
	// SnapshotInterval is how often each partition's changed state is
	// written to the changelog and Pebble; between snapshots the input
	// and the recorded clock moves make it durable, and a partition opened
	// elsewhere replays them. Longer intervals write each user less often
	// and make a takeover replay more. Default 10s.
	SnapshotInterval time.Duration
	// SnapshotUsers snapshots a partition sooner, once this many of its
	// users have changed: they stay in memory until then. Default 20000.
	SnapshotUsers int
	// MaxCompactionLag is the longest max.compaction.lag.ms the changelog
	// may have: an erased user's earlier values stay in the changelog's
	// history until the broker compacts it, so New refuses a changelog
	// that may keep them longer. Default 24h; negative skips the check.
	MaxCompactionLag time.Duration
	// Limits bounds per-user state; zero takes state.DefaultLimits.
	Limits state.Limits
	// Zones is the time zone database of quiet hours and caps, shared by
	// every partition's engine. Default a new zoneinfo.DB (embedded in the
	// binary; the host's zone files are never read).
	Zones *zoneinfo.DB
	// CacheBytes is Pebble's block cache, one for all the partitions'
	// stores. Default 256 MiB.
	CacheBytes int64
	// CacheUsers is how many decoded users each partition keeps in memory.
	CacheUsers int
	// Logger receives the processor's logs. Default discard.
	Logger *slog.Logger
	// Meter provides the metrics. Default no-op.
	Meter metric.MeterProvider
}

func (c Config) withDefaults() (Config, error) {
	if c.Group == "" {
		c.Group = "microtrigger-processor"
	}
	if c.Topics.Events == "" {
		c.Topics.Events = schema.TopicEvents
	}
	if c.Topics.Commands == "" {
		c.Topics.Commands = schema.TopicCommands
	}
	if c.Topics.EventsDLQ == "" {
		c.Topics.EventsDLQ = schema.TopicEventsDLQ
	}
	if c.Topics.Changelog == "" {
		c.Topics.Changelog = schema.TopicChangelog
	}
	if c.Clock == nil {
		c.Clock = wallClock{}
	}
	if c.TickInterval <= 0 {
		c.TickInterval = time.Second
	}
	if c.MaxPollRecords <= 0 {
		c.MaxPollRecords = 10000
	}
	if c.TransactionalID == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "local"
		}
		c.TransactionalID = "microtrigger-processor-" + host
	}
	if c.StaleStoreAfter <= 0 {
		c.StaleStoreAfter = 12 * time.Hour
	}
	if c.MaxCompactionLag == 0 {
		c.MaxCompactionLag = 24 * time.Hour
	}
	if c.CacheBytes <= 0 {
		c.CacheBytes = 256 << 20
	}
	if c.SnapshotInterval <= 0 {
		c.SnapshotInterval = 10 * time.Second
	}
	if c.SnapshotUsers <= 0 {
		c.SnapshotUsers = 20000
	}
	if c.TransactionTimeout <= 0 {
		c.TransactionTimeout = 10 * time.Second
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
	if len(c.Kafka) == 0 {
		errs = append(errs, errors.New("no Kafka options: at least kgo.SeedBrokers is needed"))
	}
	if c.Pack == nil {
		errs = append(errs, errors.New("no rule pack"))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("no state directory"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("processor config: %w", err)
	}
	return nil
}
