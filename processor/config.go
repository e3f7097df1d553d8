package processor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

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
	// MaxPollRecords bounds a batch. Default 40000: about one whole fetch
	// response (see fetchPartitionBytes), so that a batch of a backlog
	// holds records of every partition and its partitions are processed
	// side by side rather than one or two at a time.
	MaxPollRecords int
	// ExactlyOnce uses one Kafka transaction per batch. Default true; set
	// DisableExactlyOnce for at-least-once (benchmarks, brokers without
	// transactions).
	DisableExactlyOnce bool
	// TransactionalID identifies this instance's transactional producer;
	// it must be stable across restarts of one instance and unique among
	// instances. Default "microtrigger-processor-" + hostname.
	TransactionalID string
	// InstanceID makes this instance a static member of its consumer
	// group (KIP-345): stable across restarts of one instance and unique
	// among instances, such as the pod name. An instance restarted with its
	// instance id within SessionTimeout gets its partitions back at once,
	// without a rebalance, and its stores are still on its volume. Empty:
	// a dynamic member, whose restart is a new member (a rebalance, then
	// another once the old one's session expires).
	InstanceID string
	// SessionTimeout is how long the group waits for a member that stops
	// heartbeating (killed, cut off) before it gives its partitions to the
	// others: what a crashed instance that does not come back costs. A
	// static member restarted within it takes its partitions back without
	// a rebalance; one restarted later starts a rebalance, and its
	// partitions may have moved and been restored elsewhere meanwhile.
	// Default 20s: a kill -9 restarted by the kubelet (at once, then after
	// CrashLoopBackOff's 10s) comes back within it, and a pod that does
	// not is replaced in 20s instead of Kafka's 45s. Static members leave
	// no group on shutdown, so a pod removed by a scale-down holds its
	// partitions this long too. The broker bounds it
	// (group.min.session.timeout.ms, 6s by default).
	SessionTimeout time.Duration
	// HeartbeatInterval is how often the instance heartbeats; a member
	// learns of a rebalance at its next heartbeat. Default 1s.
	HeartbeatInterval time.Duration
	// RebalanceTimeout is how long, once a rebalance begins, the
	// coordinator waits for every member to rejoin; a member that has not
	// by then is dropped. Instances rejoin within a heartbeat (revoking
	// only marks partitions; an open transaction ends in one request), so
	// it only ever runs out waiting for dead members that have not expired
	// yet: it bounds how long a crash mid-rebalance holds the group.
	// Default 15s.
	RebalanceTimeout time.Duration
	// UnreachableAfter is how long the cluster may go without answering
	// before Readiness reports the instance unready. Default 10s.
	UnreachableAfter time.Duration
	// StuckAfter is how long the main loop may go without coming round
	// (a poll, a batch and its transaction; a restore, a replay and a
	// retry count their steps) before Liveness reports the instance stuck,
	// while Kafka answers. Default 2m: a turn takes at most a tick and a
	// batch, a retry waits at most 30s.
	StuckAfter time.Duration
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
	// history until the broker compacts it, so Run refuses a changelog
	// that may keep them longer. Default 24h; negative skips this check
	// (Run refuses a changelog that is not compacted anyway).
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
	// Tracer, when set, receives a span per batch transaction and per
	// send-command; a command's record carries its span's W3C traceparent
	// header, child of its event's when the event's record carried one.
	// Default nil: no spans, no trace headers written.
	Tracer trace.TracerProvider
	// Hooks are franz-go hooks of the group client alone, the one that
	// consumes the events and produces the outputs (not of the clients
	// that read changelogs while restoring): the Kafka client metrics of
	// franz-go's kprom plugin, which registers one client's metrics.
	Hooks []kgo.Hook
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
		c.MaxPollRecords = 40000
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
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 20 * time.Second
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.RebalanceTimeout <= 0 {
		c.RebalanceTimeout = 15 * time.Second
	}
	if c.StuckAfter <= 0 {
		c.StuckAfter = 2 * time.Minute
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
	if c.HeartbeatInterval >= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("heartbeat interval %s must be shorter than the session timeout %s", c.HeartbeatInterval, c.SessionTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("processor config: %w", err)
	}
	return nil
}
