package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"golang.org/x/sync/errgroup"

	"github.com/microtrigger/microtrigger/internal/telemetry"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/schema"
)

// pebbleMemtables is what the partitions' memtables may take outside the Go
// heap, roughly, for the automatic memory limit.
const pebbleMemtables = 128 << 20

func registerProcessor(app *kingpin.Application, e *env) {
	cmd := app.Command("processor", "Run the stream processor: events in, send-commands out.")
	var k kafkaFlags
	addKafkaFlags(cmd, &k, "")
	var cfg processor.Config
	var rulesDir, templates, metricsAddr string
	var grace time.Duration
	var atLeastOnce bool
	var maxLag time.Duration
	var cpuProfile string
	cmd.Flag("rules", "Rule pack directory.").Required().StringVar(&rulesDir)
	cmd.Flag("templates", "Template directory checked against the pack (default: RULES/../templates when present).").StringVar(&templates)
	cmd.Flag("state-dir", "Directory for the per-partition Pebble stores.").Required().StringVar(&cfg.StateDir)
	cmd.Flag("group", "Consumer group.").Default("microtrigger-processor").StringVar(&cfg.Group)
	cmd.Flag("topic.events", "Input topic.").Default(schema.TopicEvents).StringVar(&cfg.Topics.Events)
	cmd.Flag("topic.commands", "Output topic for send-commands.").Default(schema.TopicCommands).StringVar(&cfg.Topics.Commands)
	cmd.Flag("topic.events-dlq", "Dead-letter topic for refused events.").Default(schema.TopicEventsDLQ).StringVar(&cfg.Topics.EventsDLQ)
	cmd.Flag("topic.changelog", "Compacted changelog topic, co-partitioned with the events topic.").Default(schema.TopicChangelog).StringVar(&cfg.Topics.Changelog)
	cmd.Flag("grace", "Event-time grace (default: the pack's policy.grace).").DurationVar(&grace)
	cmd.Flag("at-least-once", "Commit without Kafka transactions (at-least-once; the sink still drops duplicates by command id).").BoolVar(&atLeastOnce)
	cmd.Flag("transactional-id", "Transactional id, stable per instance (default microtrigger-processor-HOSTNAME).").StringVar(&cfg.TransactionalID)
	cmd.Flag("instance-id", "Static group membership id, stable per instance and unique among instances (e.g. the pod name): an instance restarted within the session timeout takes its partitions back at once, without a rebalance.").StringVar(&cfg.InstanceID)
	cmd.Flag("session-timeout", "How long the group waits for an instance that stopped heartbeating before its partitions go to the others.").Default("20s").DurationVar(&cfg.SessionTimeout)
	cmd.Flag("heartbeat-interval", "How often the instance heartbeats (and learns of a rebalance).").Default("1s").DurationVar(&cfg.HeartbeatInterval)
	cmd.Flag("rebalance-timeout", "How long a rebalance waits for every member to rejoin before dropping those that have not.").Default("15s").DurationVar(&cfg.RebalanceTimeout)
	cmd.Flag("tick", "How often timers are checked when no event arrives.").Default("1s").DurationVar(&cfg.TickInterval)
	cmd.Flag("changelog.max-compaction-lag", "Refuse a changelog whose max.compaction.lag.ms is longer (erased users' history must not outlive it); 0 skips this check (a changelog that is not compacted is refused anyway).").Default("24h").DurationVar(&maxLag)
	cmd.Flag("cache-size", "Pebble block cache shared by all partitions' stores, in bytes.").Default("268435456").Int64Var(&cfg.CacheBytes)
	cmd.Flag("snapshot.interval", "How often each partition's changed state is written to the changelog and Pebble.").Default("10s").DurationVar(&cfg.SnapshotInterval)
	cmd.Flag("snapshot.users", "Snapshot a partition sooner once this many of its users changed (they stay in memory until then).").Default("20000").IntVar(&cfg.SnapshotUsers)
	cmd.Flag("cpuprofile", "Write a CPU profile of the whole run to this file (go tool pprof reads it).").StringVar(&cpuProfile)
	cmd.Flag("metrics.listen", "Address serving /metrics, /healthz and /readyz (empty: none).").Default(":9464").StringVar(&metricsAddr)
	cmd.Action(e.selects(func(ctx context.Context) error {
		opts, err := k.opts()
		if err != nil {
			return e.usageError("processor", "%v", err)
		}
		if err := e.needDir("processor", "--rules", rulesDir, aRulePack); err != nil {
			return err
		}
		if templates != "" {
			if err := e.needDir("processor", "--templates", templates, aTemplates); err != nil {
				return err
			}
		}
		pack, err := e.loadPack(rulesDir, templates)
		if err != nil {
			return err
		}
		tel, err := telemetry.New()
		if err != nil {
			return err
		}
		cfg.Kafka = opts
		cfg.Pack = pack
		cfg.Logger = e.logger()
		cfg.Meter = tel.MeterProvider()
		cfg.Hooks = tel.KafkaHooks("processor")
		stopTracing, err := tel.StartTracing(ctx, "microtrigger-processor")
		if err != nil {
			return err
		}
		defer stopTracing()
		cfg.Tracer = tel.TracerProvider()
		cfg.DisableExactlyOnce = atLeastOnce
		cfg.MaxCompactionLag = maxLag
		if maxLag == 0 {
			cfg.MaxCompactionLag = -1
		}
		if grace > 0 {
			cfg.Grace = &grace
		}
		p, err := processor.New(cfg)
		if err != nil {
			return e.usageError("processor", "%v", err)
		}
		cfg.Logger.Info("garbage collector", "gc", tuneGC(os.Getenv, cgroupMemoryFiles(), cfg.CacheBytes+pebbleMemtables).logValue())
		if cpuProfile != "" {
			f, err := os.Create(cpuProfile)
			if err != nil {
				return fmt.Errorf("create CPU profile: %w", err)
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return fmt.Errorf("start CPU profile: %w", err)
			}
			defer pprof.StopCPUProfile()
		}
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return p.Run(gctx) })
		g.Go(func() error {
			return telemetry.Serve(gctx, metricsAddr, tel.Handler(telemetry.Probes{Live: p.Liveness, Ready: p.Readiness}))
		})
		if err := g.Wait(); err != nil && !(errors.Is(err, context.Canceled) && ctx.Err() != nil) {
			return err
		}
		return nil // stopped, if only while starting: a server has nothing left undone
	}))
}
