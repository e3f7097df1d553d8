package sink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/groupwatch"
	"github.com/microtrigger/microtrigger/sink/ledger"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
)

// Sink is the delivery worker.
type Sink struct {
	cfg     Config
	metrics *metrics
	watch   *groupwatch.Watch

	// outcomes is set before the group client exists, whose rebalance
	// callbacks use it.
	outcomes *outcomes

	mu     sync.Mutex
	ledger *ledger.Ledger
	fatal  error // from a rebalance callback or the outcomes reader
	// restoring and unrestored are partitions whose ledger is being
	// restored, or whose restore failed and is retried by the poll loop.
	restoring  []int32
	unrestored map[int32]bool
	failing    error // why the poll loop is retrying, while it is
	// opened is closed once ledger is set: the client, which the ledger
	// needs as its producer, may join the group and call assigned first.
	opened chan struct{}
	// heartbeat is when the delivery loop last came round (Config.Now,
	// Unix nanoseconds; 0 before Run), for Liveness.
	heartbeat atomic.Int64
}

// New checks cfg and returns a sink. It connects to nothing until Run.
func New(cfg Config) (*Sink, error) {
	cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, metrics: newMetrics(cfg.Meter), opened: make(chan struct{}), unrestored: map[int32]bool{},
		watch: groupwatch.New(groupwatch.Config{Logger: cfg.Logger, Unreachable: cfg.UnreachableAfter})}
	s.metrics.observeProbes(s.Readiness)
	return s, nil
}

// beat records a turn of the delivery loop (or a step within one: a
// SendGrid attempt, a ledger write retried, a ledger restore's fetch), for
// Liveness.
func (s *Sink) beat() { s.heartbeat.Store(s.cfg.Now().UnixNano()) }

// Liveness returns nil while the sink is making progress, for /healthz:
// its delivery loop has come round (or taken a step: a SendGrid attempt, a
// ledger write, a fetch of a ledger restore) within StuckAfter on
// Config.Now, or it has not started yet. A loop that has not come round
// for longer is stuck, unless the cluster does not answer: it then waits
// on Kafka, Readiness says so, and a restart would not help.
func (s *Sink) Liveness() error {
	last := s.heartbeat.Load()
	if last == 0 {
		return nil
	}
	idle := s.cfg.Now().Sub(time.Unix(0, last))
	if idle <= s.cfg.StuckAfter || !s.watch.Reachable() {
		return nil
	}
	return fmt.Errorf("stuck: the delivery loop has not come round for %s (more than %s) while Kafka answers", idle.Round(time.Second), s.cfg.StuckAfter)
}

// Ready reports whether the sink is ready (for /readyz): see Readiness.
func (s *Sink) Ready() bool { return s.Readiness() == nil }

// Readiness returns nil once the sink has joined its group (an assignment,
// even an empty one, has arrived: a sink beyond the partition count is as
// ready as it gets) and restored the ledger of its partitions, while the
// cluster answers and the poll loop is not retrying a failure; otherwise
// what it is waiting for.
func (s *Sink) Readiness() error {
	if err := s.watch.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(s.restoring) > 0:
		return fmt.Errorf("restoring the ledger of partitions %v", s.restoring)
	case len(s.unrestored) > 0:
		return fmt.Errorf("ledger of partitions %v not restored; retrying", sortedKeys(s.unrestored))
	case s.failing != nil:
		return fmt.Errorf("delivery paused, retrying: %w", s.failing)
	}
	return nil
}

// Run consumes and delivers until ctx ends (it then returns nil) or a
// failure no retry can mend stops it: SendGrid refusing the credentials,
// Kafka refusing them (authorization). A poll that fails otherwise (the
// broker away, the ledger's changelog not writable) is read again from
// its first record after a backoff, while /readyz says why; the ledger
// makes the second reading harmless. Offsets are committed only after
// every record of a poll is settled (delivered, dead-lettered, or
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
		if err := out.run(octx, c.Logger); err != nil {
			s.setFatal(err)
		}
	}()
	defer func() { stopOutcomes(); <-outDone }()
	opts := append(append(s.watch.Opts(), c.Kafka...),
		kgo.ConsumerGroup(c.Group),
		kgo.ConsumeTopics(c.Topics.Commands),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.RecordPartitioner(ledger.Partitioner(c.Topics.Changelog)),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
	)
	if len(c.Hooks) > 0 {
		opts = append(opts, kgo.WithHooks(c.Hooks...))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("sink: kafka client: %w", err)
	}
	defer cl.Close()
	// Leaving the group (Close) needs the rebalance the poll loop blocks.
	defer cl.AllowRebalance()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go s.watch.Run(wctx)
	led, err := ledger.New(ledger.Config{
		Dir: c.StateDir, Topic: c.Topics.Changelog, Producer: cl, Kafka: c.Kafka, Logger: c.Logger, Meter: c.Meter,
		Progress: s.beat,
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
	wait := time.Duration(0)
	for {
		s.beat()
		fs := s.wait(ctx, cl, out)
		if err := s.fatalErr(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		err := s.poll(ctx, cl, fs)
		if err == nil {
			err = s.settle(ctx, cl)
		}
		switch {
		case err == nil:
			wait = 0
			s.setFailing(nil)
		case ctx.Err() != nil && errors.Is(err, context.Canceled):
			return nil // stopped mid-batch: what is unsettled is redone next time
		case fatal(err):
			return err
		default:
			cl.AllowRebalance()
			wait = min(max(2*wait, 500*time.Millisecond), 30*time.Second)
			s.setFailing(err)
			c.Logger.Warn("delivery paused; the poll is read again", "err", err, "retry_in", wait.String())
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			continue
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

// wait waits for send-commands records, at most CheckEvery, or until
// evidence arrives in sink-outcomes: unknown outcomes are settled between
// polls, and a ledger restore that failed in a rebalance callback is
// retried.
func (s *Sink) wait(ctx context.Context, cl *kgo.Client, out *outcomes) kgo.Fetches {
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

// poll settles one poll's records and commits their offsets. On an error
// consumption is rewound to the poll's first record of each partition.
func (s *Sink) poll(ctx context.Context, cl *kgo.Client, fs kgo.Fetches) error {
	c := &s.cfg
	if err := s.fetchErr(fs); err != nil {
		return err
	}
	recs := fs.Records()
	if err := s.restorePending(ctx); err != nil {
		rewind(cl, recs)
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	start := time.Now()
	if err := s.process(ctx, cl, recs); err != nil {
		rewind(cl, recs)
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
	return nil
}

// rewind makes the next poll return recs again, from the first record of
// each partition: nothing after them was consumed.
func rewind(cl *kgo.Client, recs []*kgo.Record) {
	if len(recs) == 0 {
		return
	}
	first := map[string]map[int32]kgo.EpochOffset{}
	for _, r := range recs {
		ps := first[r.Topic]
		if ps == nil {
			ps = map[int32]kgo.EpochOffset{}
			first[r.Topic] = ps
		}
		if o, ok := ps[r.Partition]; !ok || r.Offset < o.Offset {
			ps[r.Partition] = kgo.EpochOffset{Epoch: -1, Offset: r.Offset}
		}
	}
	cl.SetOffsets(first)
}

// fatal reports errors no retry mends.
func fatal(err error) bool {
	return errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, sendgrid.ErrUnauthorized) ||
		errors.Is(err, kerr.GroupAuthorizationFailed) || errors.Is(err, kerr.TopicAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed) || errors.Is(err, kerr.SaslAuthenticationFailed)
}

func (s *Sink) setFailing(err error) {
	s.mu.Lock()
	s.failing = err
	s.mu.Unlock()
}

// restorePending retries the restore of partitions whose ledger could not
// be restored when they were assigned.
func (s *Sink) restorePending(ctx context.Context) error {
	s.mu.Lock()
	parts := sortedKeys(s.unrestored)
	s.mu.Unlock()
	if len(parts) == 0 {
		return nil
	}
	if err := s.ledger.Assign(ctx, parts); err != nil {
		return fmt.Errorf("sink: restore ledger of partitions %v: %w", parts, err)
	}
	if err := s.readOutcomes(ctx, parts); err != nil {
		return fmt.Errorf("sink: read SendGrid's outcomes of partitions %v: %w", parts, err)
	}
	s.mu.Lock()
	for _, p := range parts {
		delete(s.unrestored, p)
	}
	s.mu.Unlock()
	s.metrics.assigned.Add(ctx, int64(len(parts)))
	s.cfg.Logger.Info("ledger restored", "partitions", parts)
	return nil
}

func sortedKeys(m map[int32]bool) []int32 {
	out := make([]int32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// fetchErr returns the first fatal error of a poll and logs the others:
// the client retries them by itself (a group session error rejoins, a
// broker away is dialled again).
func (s *Sink) fetchErr(fs kgo.Fetches) error {
	var out error
	fs.EachError(func(t string, p int32, err error) {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), out != nil:
		case fatal(err):
			out = fmt.Errorf("sink: consume %s partition %d: %w", t, p, err)
		default:
			s.cfg.Logger.Warn("consume", "topic", t, "partition", p, "err", err)
		}
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

// readOutcomes starts reading sink-outcomes for newly owned partitions.
// Evidence for what a previous owner left waiting may have arrived while
// no one read it: it reads from before the oldest such command.
func (s *Sink) readOutcomes(ctx context.Context, parts []int32) error {
	since := s.cfg.Now()
	for _, p := range parts {
		pend, err := s.ledger.Pending(p)
		if err != nil {
			return err
		}
		for _, pe := range pend {
			if pe.At.Before(since) {
				since = pe.At
			}
		}
	}
	return s.outcomes.assign(ctx, parts, since.Add(-outcomesLookback))
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
// records is polled. A restore that fails (the broker away) is retried by
// the poll loop, which processes nothing until it succeeds.
func (s *Sink) assigned(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	parts := m[s.cfg.Topics.Commands]
	if len(parts) == 0 {
		// Joined with nothing new to own (more sinks than partitions, or
		// a rebalance that kept what it had).
		s.watch.Assigned(nil)
		return
	}
	select {
	case <-s.opened:
	case <-ctx.Done():
		return
	}
	s.mu.Lock()
	s.restoring = slices.Sorted(slices.Values(parts))
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.restoring = nil
		s.mu.Unlock()
	}()
	// Ready only once the ledger of what it owns is restored, not when the
	// first command arrives: an idle sink is a ready sink.
	defer s.watch.Assigned(parts)
	start := time.Now()
	if err := s.ledger.Assign(ctx, parts); err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.Warn("restore ledger; retrying", "partitions", parts, "err", err)
			s.mu.Lock()
			for _, p := range parts {
				s.unrestored[p] = true
			}
			s.mu.Unlock()
		}
		return
	}
	if err := s.readOutcomes(ctx, parts); err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.Warn("read SendGrid's outcomes of new partitions; retrying", "partitions", parts, "err", err)
			s.mu.Lock()
			for _, p := range parts {
				s.unrestored[p] = true
			}
			s.mu.Unlock()
		}
		return
	}
	s.metrics.assigned.Add(ctx, int64(len(parts)))
	s.cfg.Logger.Info("ledger restored", "partitions", parts, "restore", time.Since(start).Round(time.Millisecond))
}

// revoked closes the ledger of revoked partitions. It commits nothing:
// every poll's offsets are committed once the poll is settled, and a poll
// that failed must be read again.
func (s *Sink) revoked(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	s.watch.Revoked(m[s.cfg.Topics.Commands])
	s.close(ctx, m[s.cfg.Topics.Commands])
}

// lost closes the ledger of partitions lost with the group session.
func (s *Sink) lost(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	s.watch.Lost(m[s.cfg.Topics.Commands])
	s.close(ctx, m[s.cfg.Topics.Commands])
}

func (s *Sink) close(ctx context.Context, parts []int32) {
	if len(parts) == 0 {
		return
	}
	select {
	case <-s.opened:
	default:
		return // no ledger yet: nothing was opened
	}
	s.outcomes.revoke(parts)
	open := 0
	s.mu.Lock()
	for _, p := range parts {
		if s.unrestored[p] {
			delete(s.unrestored, p)
		} else {
			open++
		}
	}
	s.mu.Unlock()
	if err := s.ledger.Revoke(parts); err != nil {
		s.cfg.Logger.Warn("close ledger partitions", "partitions", parts, "err", err)
	}
	s.metrics.assigned.Add(ctx, -int64(open))
}
