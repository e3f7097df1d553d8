package sink

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/microtrigger/microtrigger/schema"
)

// Topics names the topics the sink reads and writes.
type Topics struct {
	Commands    string // default schema.TopicCommands
	CommandsDLQ string // default schema.TopicCommandsDLQ
	Changelog   string // the ledger's; default schema.TopicSinkChangelog
	Outcomes    string // the webhook's; default schema.TopicSinkOutcomes
}

// DefaultUnknownDeadline is Config.UnknownDeadline's default.
const DefaultUnknownDeadline = time.Hour

// Config configures a Sink. New fills the zero fields with the documented
// defaults, on a copy.
type Config struct {
	// Kafka are the client options: seed brokers, TLS, SASL. Required.
	Kafka []kgo.Opt
	// Group is the consumer group. Default "microtrigger-sink".
	Group string
	// Topics; zero fields take the contract's names.
	Topics Topics
	// StateDir holds the ledger's Pebble stores. Required. It may be empty
	// or lost: the ledger rebuilds from its changelog.
	StateDir string
	// Transport renders and delivers. Required: see SendGrid, Console,
	// Files.
	Transport Transport
	// MaxBatch is the most records processed per poll. Default 1000.
	MaxBatch int
	// LedgerRetention is how long a settled command id is remembered.
	// Default 30 days. Commands re-emitted after that would be sent again.
	LedgerRetention time.Duration
	// ExpireEvery is how often expired ledger entries are removed.
	// Default 1 hour.
	ExpireEvery time.Duration
	// UnknownDeadline is how long after a request whose answer never came
	// (a cut connection, a timeout, a crash mid-request) the sink waits for
	// a SendGrid event in Topics.Outcomes proving that the request's
	// commands were accepted (then they are recorded as sent); past it,
	// the commands without one are dead-lettered as outcome_unknown, never
	// sent again. Default DefaultUnknownDeadline; negative: no wait.
	UnknownDeadline time.Duration
	// CheckEvery is how often, at the least, the delivery loop wakes to
	// read outcomes and check deadlines while no command arrives. Default
	// 1 s.
	CheckEvery time.Duration
	// Now is the sink's wall clock: the ledger's timestamps, and what a
	// command's expires_at is held to (a command read after it is
	// dead-lettered as expired, unsent). Default time.Now.
	Now func() time.Time
	// UnreachableAfter is how long the cluster may go without answering
	// before Readiness reports the sink unready. Default 10s.
	UnreachableAfter time.Duration
	// StuckAfter is how long the delivery loop may go without coming
	// round (or taking a step: a SendGrid attempt, a ledger write, a fetch
	// of a ledger restore) before Liveness reports the sink stuck, while
	// Kafka answers. Default 10m: the longest legitimate wait is a
	// rate-limit reset (at most the SendGrid client's MaxWait, 5m by
	// default) or a backoff between attempts.
	StuckAfter time.Duration
	// Logger; default discard.
	Logger *slog.Logger
	// Meter receives the microtrigger_sink_* metrics; default no-op.
	Meter metric.MeterProvider
	// Hooks are franz-go hooks of the group client alone, the one that
	// consumes send-commands and produces dead letters and the ledger's
	// changelog (not of the clients that restore the ledger or read
	// outcomes): the Kafka client metrics of franz-go's kprom plugin,
	// which registers one client's metrics.
	Hooks []kgo.Hook
	// OnDelivered, when set, is called with each command the transport
	// accepted, after the ledger recorded it as sent. It runs on the
	// delivery loop: keep it short.
	OnDelivered func(schema.SendCommand)
}

func (c *Config) withDefaults() {
	if c.Group == "" {
		c.Group = "microtrigger-sink"
	}
	if c.Topics.Commands == "" {
		c.Topics.Commands = schema.TopicCommands
	}
	if c.Topics.CommandsDLQ == "" {
		c.Topics.CommandsDLQ = schema.TopicCommandsDLQ
	}
	if c.Topics.Changelog == "" {
		c.Topics.Changelog = schema.TopicSinkChangelog
	}
	if c.Topics.Outcomes == "" {
		c.Topics.Outcomes = schema.TopicSinkOutcomes
	}
	if c.UnknownDeadline == 0 {
		c.UnknownDeadline = DefaultUnknownDeadline
	}
	if c.CheckEvery <= 0 {
		c.CheckEvery = time.Second
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.LedgerRetention <= 0 {
		c.LedgerRetention = 30 * 24 * time.Hour
	}
	if c.ExpireEvery <= 0 {
		c.ExpireEvery = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.StuckAfter <= 0 {
		c.StuckAfter = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Meter == nil {
		c.Meter = noop.NewMeterProvider()
	}
}

// Validate reports every problem of c.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Kafka) == 0 {
		errs = append(errs, fmt.Errorf("sink: no Kafka options (seed brokers)"))
	}
	if c.StateDir == "" {
		errs = append(errs, fmt.Errorf("sink: no state directory"))
	}
	if c.Transport == nil {
		errs = append(errs, fmt.Errorf("sink: no transport"))
	}
	if c.Topics.Changelog == c.Topics.Commands || c.Topics.CommandsDLQ == c.Topics.Commands || c.Topics.Outcomes == c.Topics.Commands {
		errs = append(errs, fmt.Errorf("sink: the dead-letter, changelog and outcomes topics must differ from %s", c.Topics.Commands))
	}
	if c.Topics.Outcomes == c.Topics.Changelog {
		errs = append(errs, fmt.Errorf("sink: the outcomes topic must differ from the changelog %s", c.Topics.Changelog))
	}
	return errors.Join(errs...)
}
