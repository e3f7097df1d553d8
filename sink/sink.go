package sink

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/sink/ledger"
)

// Sink is the delivery worker.
type Sink struct {
	cfg     Config
	metrics *metrics
	ready   atomic.Bool

	// outcomes is set before the group client exists, whose rebalance
	// callbacks use it.
	outcomes *outcomes

	mu     sync.Mutex
	ledger *ledger.Ledger
	fatal  error // from a rebalance callback or the outcomes reader
	// opened is closed once ledger is set: the client, which the ledger
	// needs as its producer, may join the group and call assigned first.
	opened chan struct{}
}

// New checks cfg and returns a sink. It connects to nothing until Run.
func New(cfg Config) (*Sink, error) {
	cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Sink{cfg: cfg, metrics: newMetrics(cfg.Meter), opened: make(chan struct{})}, nil
}

// Ready reports whether the sink has joined its group and restored the
// ledger of its partitions (for /readyz).
func (s *Sink) Ready() bool { return s.ready.Load() }

// Run consumes and delivers until ctx ends (it then returns nil) or a
// failure stops it: Kafka unreachable, the ledger's changelog not
// writable, SendGrid refusing the credentials. Offsets are committed only
// after every record of a poll is settled (delivered, dead-lettered, or
// recorded in the ledger as waiting for its outcome), so a failure never
// skips a command. Between polls it settles the commands whose outcome
// was unknown: from the evidence read in Topics.Outcomes, or at their
// deadline.
func (s *Sink) Run(ctx context.Context) error {
	c := &s.cfg
	out, err := newOutcomes(c)
	if err != nil {
		return err
	}
	defer out.close()
	s.outcomes = out
	octx, stopOutcomes := context.WithCancel(ctx)
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		if err := out.run(octx); err != nil {
			s.setFatal(err)
		}
	}()
	defer func() { stopOutcomes(); <-outDone }()
	opts := append(append([]kgo.Opt{}, c.Kafka...),
		kgo.ConsumerGroup(c.Group),
		kgo.ConsumeTopics(c.Topics.Commands),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.RecordPartitioner(ledger.Partitioner(c.Topics.Changelog)),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.revoked),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("sink: kafka client: %w", err)
	}
	defer cl.Close()
	// Leaving the group (Close) needs the rebalance the poll loop blocks.
	defer cl.AllowRebalance()
	led, err := ledger.New(ledger.Config{
		Dir: c.StateDir, Topic: c.Topics.Changelog, Producer: cl, Kafka: c.Kafka, Logger: c.Logger,
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ledger = led
	s.mu.Unlock()
	close(s.opened)
	defer led.Close()
	if err := s.checkTopics(ctx, cl); err != nil {
		return err
	}
	c.Logger.Info("sink started", "group", c.Group, "topic", c.Topics.Commands)
	lastExpire := c.Now()
	for {
		fs := s.poll(ctx, cl, out)
		if err := s.fatalErr(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if err := fetchErr(fs); err != nil {
			return err
		}
		s.ready.Store(true)
		if recs := fs.Records(); len(recs) > 0 {
			start := time.Now()
			if err := s.process(ctx, cl, recs); err != nil {
				if ctx.Err() != nil && errors.Is(err, context.Canceled) {
					return nil // stopped mid-batch: what is unsettled is redone next time
				}
				return err
			}
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			err := cl.CommitUncommittedOffsets(cctx)
			cancel()
			if err != nil {
				// Not fatal: the ledger makes re-reading these records harmless.
				c.Logger.Warn("commit offsets", "err", err)
			}
			s.metrics.batch.Record(ctx, time.Since(start).Seconds())
		}
		if err := s.settle(ctx, cl); err != nil {
			return err
		}
		if now := c.Now(); now.Sub(lastExpire) >= c.ExpireEvery {
			lastExpire = now
			n, err := led.Expire(ctx, now.Add(-c.LedgerRetention))
			if err != nil {
				c.Logger.Warn("expire ledger entries", "err", err)
			}
			s.metrics.ledgerExpired.Add(ctx, int64(n))
		}
		cl.AllowRebalance()
	}
}

// poll waits for send-commands records, at most CheckEvery, or until
// evidence arrives in sink-outcomes: unknown outcomes are settled between
// polls.
func (s *Sink) poll(ctx context.Context, cl *kgo.Client, out *outcomes) kgo.Fetches {
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		t := time.NewTimer(s.cfg.CheckEvery)
		defer t.Stop()
		select {
		case <-t.C:
		case <-out.wake:
		case <-done:
		}
		cancel()
	}()
	fs := cl.PollRecords(pctx, s.cfg.MaxBatch)
	close(done)
	cancel()
	return fs
}

func fetchErr(fs kgo.Fetches) error {
	var out error
	fs.EachError(func(t string, p int32, err error) {
		if errors.Is(err, context.Canceled) {
			return
		}
		out = errors.Join(out, fmt.Errorf("sink: consume %s partition %d: %w", t, p, err))
	})
	return out
}

// checkTopics makes sure the changelog has a partition for every
// send-commands partition (the ledger of partition N lives in changelog
// partition N) and that the outcomes topic has as many partitions as
// send-commands (the webhook's records reach the partition number of
// their command by the key's hash).
func (s *Sink) checkTopics(ctx context.Context, cl *kgo.Client) error {
	c := &s.cfg
	md, err := kadm.NewClient(cl).ListTopics(ctx, c.Topics.Commands, c.Topics.Changelog, c.Topics.Outcomes)
	if err != nil {
		return fmt.Errorf("sink: list topics: %w", err)
	}
	cmds, ok1 := md[c.Topics.Commands]
	chl, ok2 := md[c.Topics.Changelog]
	outs, ok3 := md[c.Topics.Outcomes]
	switch {
	case !ok1 || cmds.Err != nil:
		return fmt.Errorf("sink: topic %s is missing", c.Topics.Commands)
	case !ok2 || chl.Err != nil:
		return fmt.Errorf("sink: changelog topic %s is missing (create it compacted, with %d partitions)", c.Topics.Changelog, len(cmds.Partitions))
	case len(chl.Partitions) < len(cmds.Partitions):
		return fmt.Errorf("sink: changelog %s has %d partitions, fewer than the %d of %s", c.Topics.Changelog, len(chl.Partitions), len(cmds.Partitions), c.Topics.Commands)
	case !ok3 || outs.Err != nil:
		return fmt.Errorf("sink: topic %s is missing (create it with %d partitions, as %s)", c.Topics.Outcomes, len(cmds.Partitions), c.Topics.Commands)
	case len(outs.Partitions) != len(cmds.Partitions):
		return fmt.Errorf("sink: %s has %d partitions and %s %d: they must be equal, for the webhook's records to reach the sink owning their command",
			c.Topics.Outcomes, len(outs.Partitions), c.Topics.Commands, len(cmds.Partitions))
	}
	return nil
}

func (s *Sink) fatalErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fatal
}

func (s *Sink) setFatal(err error) {
	s.mu.Lock()
	if s.fatal == nil {
		s.fatal = err
	}
	s.mu.Unlock()
}

// assigned restores the ledger of new partitions before any of their
// records is polled.
func (s *Sink) assigned(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	parts := m[s.cfg.Topics.Commands]
	if len(parts) == 0 {
		// Joined with nothing to own (more sinks than partitions): as
		// ready as it will get.
		s.ready.Store(true)
		return
	}
	select {
	case <-s.opened:
	case <-ctx.Done():
		return
	}
	start := time.Now()
	if err := s.ledger.Assign(ctx, parts); err != nil {
		if ctx.Err() == nil {
			s.setFatal(fmt.Errorf("sink: restore ledger of partitions %v: %w", parts, err))
		}
		return
	}
	// Evidence for what a previous owner left waiting may have arrived
	// while no one read it: read from before the oldest such command.
	since := s.cfg.Now()
	for _, p := range parts {
		pend, err := s.ledger.Pending(p)
		if err != nil {
			s.setFatal(err)
			return
		}
		for _, pe := range pend {
			if pe.At.Before(since) {
				since = pe.At
			}
		}
	}
	if err := s.outcomes.assign(ctx, parts, since.Add(-outcomesLookback)); err != nil {
		if ctx.Err() == nil {
			s.setFatal(err)
		}
		return
	}
	s.metrics.assigned.Add(ctx, int64(len(parts)))
	s.cfg.Logger.Info("partitions assigned", "partitions", parts, "restore", time.Since(start).Round(time.Millisecond))
	// Ready as soon as the ledger of what it owns is restored, not when the
	// first command arrives: an idle sink is a ready sink.
	s.ready.Store(true)
}

// revoked closes the ledger of lost partitions. It commits nothing: every
// poll's offsets are committed once the poll is settled, and a poll that
// failed must be read again.
func (s *Sink) revoked(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	parts := m[s.cfg.Topics.Commands]
	if len(parts) == 0 {
		return
	}
	select {
	case <-s.opened:
	default:
		return // no ledger yet: nothing was opened
	}
	s.outcomes.revoke(parts)
	if err := s.ledger.Revoke(parts); err != nil {
		s.cfg.Logger.Warn("close ledger partitions", "partitions", parts, "err", err)
	}
	s.metrics.assigned.Add(ctx, -int64(len(parts)))
	s.cfg.Logger.Info("partitions revoked", "partitions", parts)
}
