package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"

	"github.com/microtrigger/microtrigger/internal/crashpoint"
	"github.com/microtrigger/microtrigger/internal/groupwatch"
	"github.com/microtrigger/microtrigger/internal/tracing"
	"github.com/microtrigger/microtrigger/processor/store"
	"github.com/microtrigger/microtrigger/processor/task"
	"github.com/microtrigger/microtrigger/schema"
)

// Processor is one instance of the live processor.
type Processor struct {
	cfg Config
	m   *metrics

	mu       sync.Mutex // guards assigned, revoked, progress and changed
	assigned map[int32]bool
	revoked  map[int32]bool
	progress map[int32]Progress
	changed  chan struct{} // closed and replaced when progress changes

	parts  map[int32]*partition // owned by the Run goroutine
	stores map[int32]*store.DB  // the parts' stores, for metrics; guarded by mu
	nparts int                  // partitions of the events topic
	ready  atomic.Bool          // every assigned partition is open and restored
	// heartbeat is when the main loop last came round (Config.Clock, Unix
	// nanoseconds; 0 before Run), for Liveness.
	heartbeat atomic.Int64
	watch     *groupwatch.Watch
	produced  []*kgo.Record // scratch
	// heldSince is when output began to wait for input to commit with.
	heldSince time.Time
	cache     *store.Cache // Pebble's block cache, shared by the partitions' stores; set under mu
	tracer    trace.Tracer // nil: no tracing
}

// Progress is what one partition has durably done.
type Progress struct {
	// Committed is the next input offset after the last committed batch.
	Committed int64
	// Watermark is the partition's event-time watermark.
	Watermark time.Time
	// Buffered and Timers count events waiting to be ordered and users with
	// pending timers.
	Buffered, Timers int
	// CaughtUp: the partition has committed everything the broker had for
	// it when last asked, so its watermark follows the wall clock.
	CaughtUp bool
	// HighWatermark is the partition's high watermark as the last fetch
	// that returned its records reported it (at assignment, its end
	// offset); -1 while unknown. HighWatermark − Committed is the
	// consumer lag.
	HighWatermark int64
}

// New validates cfg and returns a processor; Run starts it.
func New(cfg Config) (*Processor, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Processor{
		cfg:      cfg,
		tracer:   newTracer(cfg.Tracer),
		m:        newMetrics(cfg.Meter),
		assigned: map[int32]bool{},
		revoked:  map[int32]bool{},
		progress: map[int32]Progress{},
		parts:    map[int32]*partition{},
		changed:  make(chan struct{}),
		watch:    groupwatch.New(groupwatch.Config{Logger: cfg.Logger, Unreachable: cfg.UnreachableAfter}),
	}
	p.m.observe(cfg.Meter, p.Progress, cfg.Clock.Now)
	p.m.observeStores(cfg.Meter, p.storeMetrics)
	p.m.observeProbes(cfg.Meter, p.Readiness)
	return p, nil
}

// Grace returns the event-time grace in force.
func (p *Processor) Grace() time.Duration {
	if p.cfg.Grace != nil {
		return *p.cfg.Grace
	}
	return p.cfg.Pack.Policy.Grace
}

// Ready reports whether the processor is ready (for /readyz): see
// Readiness.
func (p *Processor) Ready() bool { return p.Readiness() == nil }

// Readiness returns nil once the instance has joined its group (an
// assignment, even an empty one, has arrived: an instance beyond the
// partition count is as ready as it gets) and every partition assigned to
// it has restored its state, while the cluster answers; otherwise what it
// is waiting for.
func (p *Processor) Readiness() error {
	if err := p.watch.Err(); err != nil {
		return err
	}
	if !p.ready.Load() {
		return errRestoring
	}
	return nil
}

var errRestoring = errors.New("restoring assigned partitions from the changelog")

// beat records a turn of the main loop (or a step of a restore, a replay
// or a retry within one), for Liveness.
func (p *Processor) beat() { p.heartbeat.Store(p.cfg.Clock.Now().UnixNano()) }

// Liveness returns nil while the instance is making progress, for
// /healthz: its main loop has come round (or a restore, a replay or a
// retry has taken a step) within StuckAfter on Config.Clock, or it has not
// started yet. A loop that has not come round for longer is stuck, unless
// the cluster does not answer: the loop then waits on Kafka, Readiness
// says so, and a restart would not help.
func (p *Processor) Liveness() error {
	last := p.heartbeat.Load()
	if last == 0 {
		return nil
	}
	idle := p.cfg.Clock.Now().Sub(time.Unix(0, last))
	if idle <= p.cfg.StuckAfter || !p.watch.Reachable() {
		return nil
	}
	return fmt.Errorf("stuck: the processing loop has not come round for %s (more than %s) while Kafka answers", idle.Round(time.Second), p.cfg.StuckAfter)
}

// Changed returns a channel closed the next time Progress changes.
func (p *Processor) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

// Progress returns each owned partition's progress.
func (p *Processor) Progress() map[int32]Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int32]Progress, len(p.progress))
	for k, v := range p.progress {
		out[k] = v
	}
	return out
}

func (p *Processor) onAssigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range m[p.cfg.Topics.Events] {
		p.assigned[id] = true
		delete(p.revoked, id)
	}
	if len(m[p.cfg.Topics.Events]) > 0 {
		p.ready.Store(false)
	}
	p.watch.Assigned(m[p.cfg.Topics.Events])
}

func (p *Processor) onLost(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	p.watch.Lost(m[p.cfg.Topics.Events])
	p.revoke(m)
}

func (p *Processor) onRevoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	p.watch.Revoked(m[p.cfg.Topics.Events])
	p.revoke(m)
}

func (p *Processor) revoke(m map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range m[p.cfg.Topics.Events] {
		p.revoked[id] = true
		delete(p.assigned, id)
		delete(p.progress, id)
	}
}

// session hides the two commit strategies: a GroupTransactSession, or a
// plain group client committing after it has produced (at-least-once).
type session interface {
	PollRecords(ctx context.Context, n int) kgo.Fetches
	Begin() error
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
	End(ctx context.Context, commit kgo.TransactionEndTry) (bool, error)
	Client() *kgo.Client
	Close()
}

type plainSession struct{ cl *kgo.Client }

func (s plainSession) PollRecords(ctx context.Context, n int) kgo.Fetches {
	return s.cl.PollRecords(ctx, n)
}
func (s plainSession) Begin() error { return nil }
func (s plainSession) Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	s.cl.Produce(ctx, r, promise)
}
func (s plainSession) End(ctx context.Context, commit kgo.TransactionEndTry) (bool, error) {
	if err := s.cl.Flush(ctx); err != nil {
		return false, err
	}
	if !commit {
		// What was produced stays produced (at-least-once); consumption
		// rewinds so the batch is processed again.
		s.cl.SetOffsets(s.cl.CommittedOffsets())
		return false, nil
	}
	if err := s.cl.CommitUncommittedOffsets(ctx); err != nil {
		return false, err
	}
	return true, nil
}
func (s plainSession) Client() *kgo.Client { return s.cl }
func (s plainSession) Close()              { s.cl.Close() }

// partitioner sends changelog records to the partition they name (the
// partition of the events they come from) and keys everything else with
// Kafka's murmur2, like any Kafka producer.
type partitioner struct{ changelog string }

func (pt partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == pt.changelog {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(topic)
}

// Run consumes until ctx ends or an unrecoverable error occurs.
func (p *Processor) Run(ctx context.Context) error {
	c := p.cfg
	// The group's timeouts come before c.Kafka, so that options given
	// there win; see Config.SessionTimeout for why these.
	opts := append(p.watch.Opts(),
		kgo.SessionTimeout(c.SessionTimeout), kgo.HeartbeatInterval(c.HeartbeatInterval), kgo.RebalanceTimeout(c.RebalanceTimeout))
	if c.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.InstanceID))
	}
	if len(c.Hooks) > 0 {
		opts = append(opts, kgo.WithHooks(c.Hooks...))
	}
	opts = append(opts, kgo.FetchMaxPartitionBytes(fetchPartitionBytes))
	opts = append(append(opts, c.Kafka...),
		kgo.ConsumerGroup(c.Group),
		kgo.ConsumeTopics(c.Topics.Events),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers take offsets; keeping them lets the committed
		// offset move past them, so "committed = end offset" means done.
		kgo.KeepControlRecords(),
		kgo.OnPartitionsAssigned(p.onAssigned),
		kgo.OnPartitionsRevoked(p.onRevoked),
		kgo.OnPartitionsLost(p.onLost),
		kgo.RecordPartitioner(partitioner{c.Topics.Changelog}),
		kgo.ProducerLinger(0),
	)
	var s session
	if c.DisableExactlyOnce {
		cl, err := kgo.NewClient(append(opts, kgo.DisableAutoCommit())...)
		if err != nil {
			return fmt.Errorf("start processor client: %w", err)
		}
		s = plainSession{cl}
	} else {
		gs, err := kgo.NewGroupTransactSession(append(opts,
			kgo.TransactionalID(c.TransactionalID),
			kgo.TransactionTimeout(c.TransactionTimeout),
		)...)
		if err != nil {
			return fmt.Errorf("start transactional processor client: %w", err)
		}
		s = gs
	}
	p.mu.Lock() // storeMetrics reads it
	p.cache = store.NewCache(c.CacheBytes)
	p.mu.Unlock()
	defer func() {
		s.Close()
		for id, part := range p.parts {
			part.close()
			delete(p.parts, id)
		}
		p.mu.Lock()
		p.progress = map[int32]Progress{} // nothing is owned any more
		p.stores = nil
		p.mu.Unlock()
		p.cache.Unref()
	}()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go p.watch.Run(wctx)
	if err := p.countPartitions(ctx, s.Client()); err != nil {
		return err
	}
	c.Logger.Info("processor started", "group", c.Group, "exactly_once", !c.DisableExactlyOnce,
		"transactional_id", c.TransactionalID, "instance_id", c.InstanceID, "partitions", p.nparts,
		"session_timeout", c.SessionTimeout.String(), "rebalance_timeout", c.RebalanceTimeout.String())

	healthy := true // the last batch committed: a last snapshot may too
	for ctx.Err() == nil {
		p.beat()
		pctx, cancel := context.WithTimeout(ctx, p.pollWait())
		fs := s.PollRecords(pctx, c.MaxPollRecords)
		cancel()
		if ctx.Err() != nil {
			break
		}
		if err := p.fetchErr(fs); err != nil {
			return err
		}
		if err := p.rebalance(ctx, s.Client()); err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		err := p.batch(ctx, s, fs, false)
		healthy = err == nil
		if err != nil {
			if errors.Is(err, errFenced) {
				return err
			}
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, errAborted) {
				c.Logger.Info("transaction aborted by a rebalance; state reset to the last commit")
			} else {
				c.Logger.Error("batch failed; state reset to the last commit", "err", err)
			}
		}
	}
	if healthy {
		p.snapshotAll(s)
	}
	return nil
}

// fetchPartitionBytes is the processor's default of kgo's
// FetchMaxPartitionBytes (Config.Kafka may override it). kgo's 1 MiB lets
// one partition fill a batch while catching up (about 7,000 compressed
// events), so a batch kept one core busy and the other idle; at 256 KiB a
// fetch response holds a slice of every partition with a backlog.
const fetchPartitionBytes = 256 << 10

// maxSnapshotSkips bounds the inputs a snapshot's replay passes over
// (SnapshotForReplay): past it, the waiting events are written instead.
const maxSnapshotSkips = 4096

// holdOutput is how long output with no input to commit with may wait for
// some: longer than a fetch waits on a busy partition.
const holdOutput = 25 * time.Millisecond

// pollWait is how long a poll may wait for records: until the next
// buffered event or timer of a caught-up partition is ready, or held output
// must go, at most TickInterval, so that timers fire on time on idle
// partitions.
func (p *Processor) pollWait() time.Duration {
	wait := p.cfg.TickInterval
	now := p.cfg.Clock.Now()
	if !p.heldSince.IsZero() {
		wait = min(wait, holdOutput-time.Since(p.heldSince))
	}
	for _, part := range p.parts {
		if !part.caughtUp() {
			continue
		}
		if at, ok := part.task.Wake(); ok {
			wait = min(wait, at.Sub(now))
		}
	}
	return max(wait, time.Millisecond)
}

// snapshotAll writes a last snapshot of every owned partition when the
// processor stops, so that the next owner has no input to replay. It is
// best effort: without it, the next owner replays.
func (p *Processor) snapshotAll(s session) {
	if len(p.parts) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.batch(ctx, s, kgo.Fetches{}, true); err != nil {
		p.cfg.Logger.Warn("last snapshot before stopping", "err", err)
	}
}

func (p *Processor) fetchErr(fs kgo.Fetches) error {
	var out error
	fs.EachError(func(t string, part int32, err error) {
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		case errors.Is(err, kgo.ErrClientClosed):
			out = err
		default:
			p.cfg.Logger.Warn("fetch error", "topic", t, "partition", part, "err", err)
		}
	})
	return out
}

func (p *Processor) countPartitions(ctx context.Context, cl *kgo.Client) error {
	md, err := kadm.NewClient(cl).ListTopics(ctx, p.cfg.Topics.Events, p.cfg.Topics.Changelog)
	if err != nil {
		return fmt.Errorf("read topic metadata: %w", err)
	}
	ev, ok := md[p.cfg.Topics.Events]
	if !ok || ev.Err != nil {
		return fmt.Errorf("events topic %q: not found", p.cfg.Topics.Events)
	}
	cl2, ok := md[p.cfg.Topics.Changelog]
	if !ok || cl2.Err != nil {
		return fmt.Errorf("changelog topic %q: not found (create it compacted, with as many partitions as %q)",
			p.cfg.Topics.Changelog, p.cfg.Topics.Events)
	}
	if len(cl2.Partitions) != len(ev.Partitions) {
		return fmt.Errorf("changelog topic %q has %d partitions, %q has %d: they must be co-partitioned",
			p.cfg.Topics.Changelog, len(cl2.Partitions), p.cfg.Topics.Events, len(ev.Partitions))
	}
	p.nparts = len(ev.Partitions)
	return p.checkCompaction(ctx, cl)
}

// changelogConfig is what the broker reports of a changelog's
// configuration; nil for what it does not report.
type changelogConfig struct {
	policy, lag, retention *string
}

// compactionProblem says what is wrong with a changelog's configuration:
// it must be compacted, and kept (a policy that deletes too must keep
// records forever), or a restore misses the users the broker deleted; with
// a bound (negative: none), its max.compaction.lag.ms must be no longer.
func compactionProblem(topic string, c changelogConfig, bound time.Duration) error {
	if c.policy != nil {
		alter := func(cfg string) string {
			return fmt.Sprintf("kafka-configs.sh --bootstrap-server BROKER --alter --entity-type topics --entity-name %s --add-config %s", topic, cfg)
		}
		policies := strings.Split(strings.ReplaceAll(*c.policy, " ", ""), ",")
		if !slices.Contains(policies, "compact") {
			return fmt.Errorf("changelog topic %q has cleanup.policy=%s: it must be compact, or the broker deletes users' state by age and a restore misses them; "+
				"set it (%s) or create the topic with --config cleanup.policy=compact", topic, *c.policy, alter("cleanup.policy=compact"))
		}
		if slices.Contains(policies, "delete") && c.retention != nil && *c.retention != "-1" {
			return fmt.Errorf("changelog topic %q has cleanup.policy=%s and retention.ms=%s: the broker deletes the state of users unchanged that long, and a restore misses them; "+
				"set cleanup.policy=compact (%s) or retention.ms=-1", topic, *c.policy, *c.retention, alter("cleanup.policy=compact"))
		}
	}
	if bound < 0 || c.lag == nil {
		return nil
	}
	max := int64(bound / time.Millisecond)
	if ms, err := strconv.ParseInt(*c.lag, 10, 64); err != nil || ms > max {
		return fmt.Errorf("changelog topic %q has max.compaction.lag.ms=%s: an erased user's earlier state could stay in its history "+
			"longer than %s; set it to at most %d (kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config max.compaction.lag.ms=%d), "+
			"or raise --changelog.max-compaction-lag", topic, *c.lag, bound, max, topic, max)
	}
	return nil
}

// checkCompaction refuses a changelog the broker does not compact, or
// deletes from: the changelog is the partitions' state, and what the
// broker deletes a restore never sees. With a MaxCompactionLag, it also
// refuses one whose broker may keep an erased user's earlier values without
// bound: an erasure overwrites the user's keys, but the values before stay
// in the log until it is compacted, and max.compaction.lag.ms is what bounds
// that.
func (p *Processor) checkCompaction(ctx context.Context, cl *kgo.Client) error {
	bound := p.cfg.MaxCompactionLag
	topic := p.cfg.Topics.Changelog
	rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("read the configuration of changelog topic %q: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return fmt.Errorf("read the configuration of changelog topic %q: %w", topic, err)
	}
	var c changelogConfig
	for _, kv := range rc.Configs {
		switch kv.Key {
		case "cleanup.policy":
			c.policy = kv.Value
		case "max.compaction.lag.ms":
			c.lag = kv.Value
		case "retention.ms":
			c.retention = kv.Value
		}
	}
	if err := compactionProblem(topic, c, bound); err != nil {
		return err
	}
	if c.policy == nil {
		p.cfg.Logger.Warn("the broker does not report cleanup.policy of the changelog: it must be compact", "topic", topic)
	}
	if bound >= 0 && c.lag == nil {
		p.cfg.Logger.Warn("the broker does not report max.compaction.lag.ms of the changelog: erasure reaches the changelog's history only when it compacts",
			"topic", topic)
	}
	return nil
}

// rebalance closes revoked partitions and restores newly assigned ones.
func (p *Processor) rebalance(ctx context.Context, cl *kgo.Client) error {
	p.mu.Lock()
	var opened, closed []int32
	for id := range p.revoked {
		closed = append(closed, id)
	}
	p.revoked = map[int32]bool{}
	for id := range p.assigned {
		if p.parts[id] == nil {
			opened = append(opened, id)
		}
	}
	p.mu.Unlock()
	sort.Slice(opened, func(i, j int) bool { return opened[i] < opened[j] })
	for _, id := range closed {
		if part := p.parts[id]; part != nil {
			if err := part.close(); err != nil {
				p.cfg.Logger.Warn("close partition store", "partition", id, "err", err)
			}
			delete(p.parts, id)
			p.mu.Lock()
			if !p.assigned[id] {
				delete(p.progress, id)
			}
			p.mu.Unlock()
			p.m.assigned.Add(ctx, -1)
			p.cfg.Logger.Info("partition revoked", "partition", id)
		}
	}
	var ends kadm.ListedOffsets
	if len(opened) > 0 {
		// Where each new partition ends tells whether it starts caught
		// up: an idle partition is never fetched with records, yet its
		// timers must fire on the wall clock.
		if err := p.retry(ctx, "list end offsets of "+p.cfg.Topics.Events, -1, func() (err error) {
			ends, err = kadm.NewClient(cl).ListCommittedOffsets(ctx, p.cfg.Topics.Events)
			return err
		}); err != nil {
			return err
		}
	}
	// Where each new partition's input resumes, from the group
	// coordinator, once no transaction leaves it pending (KIP-447's
	// RequireStable, as the client's own fetch): the client's view may
	// not hold it yet when the assignment arrives (after a lost session
	// its fetch waits for a pending transaction to end), and a partition
	// opened at 0 would replay nothing and fire again the timers its last
	// owner fired since the snapshot.
	committed := map[int32]int64{}
	if len(opened) > 0 {
		if err := p.retry(ctx, "fetch the committed offsets of "+p.cfg.Topics.Events, -1, func() error {
			offs, err := kadm.NewClient(cl).FetchOffsets(kadm.RequireStable(ctx), p.cfg.Group)
			if err != nil {
				return err
			}
			for _, id := range opened {
				o, ok := offs.Lookup(p.cfg.Topics.Events, id)
				if !ok {
					continue // never committed: from the start
				}
				if o.Err != nil {
					return fmt.Errorf("partition %d: %w", id, o.Err)
				}
				committed[id] = o.At
			}
			return nil
		}); err != nil {
			return err
		}
	}
	// Partitions restore side by side: each has its own store and
	// clients, and the changelog reads and Pebble writes overlap. No
	// batch runs until every assigned partition is open: a batch would
	// commit offsets past records of a partition it skipped.
	parts := make([]*partition, len(opened))
	var g errgroup.Group
	g.SetLimit(4)
	for i, id := range opened {
		g.Go(func() error {
			from := max(committed[id], 0)
			return p.retry(ctx, "restore partition", id, func() (err error) {
				if !p.isAssigned(id) {
					return nil // revoked meanwhile
				}
				parts[i], err = p.open(ctx, id, from)
				return err
			})
		})
	}
	err := g.Wait()
	for i, id := range opened {
		part := parts[i]
		if part == nil {
			continue
		}
		if err != nil {
			part.close()
			continue
		}
		if o, ok := ends.Lookup(p.cfg.Topics.Events, id); ok && o.Err == nil {
			part.end = o.Offset
			part.hwm = o.Offset
		}
		p.parts[id] = part
		p.m.assigned.Add(ctx, 1)
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	ready := true
	for id := range p.assigned {
		if p.parts[id] == nil {
			ready = false
		}
	}
	// Under the lock: an assignment arriving now stores false after this.
	p.ready.Store(ready)
	p.mu.Unlock()
	return nil
}

func (p *Processor) isAssigned(id int32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.assigned[id]
}

// retry runs f until it succeeds or ctx ends, backing off from 500ms to
// 30s: a broker away for a while stops the processor's progress, not the
// processor (each attempt counts as a turn for Liveness). It returns ctx's
// error, or nil.
func (p *Processor) retry(ctx context.Context, what string, partition int32, f func() error) error {
	log := p.cfg.Logger
	wait := 500 * time.Millisecond
	for {
		p.beat()
		err := f()
		if err == nil || ctx.Err() != nil {
			return ctx.Err()
		}
		args := []any{"err", err, "retry_in", wait.String()}
		if partition >= 0 {
			args = append(args, "partition", partition)
		}
		log.Warn(what+" failed; retrying", args...)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// batch processes one poll's records and due timers, and commits them in
// one transaction with their outputs. Partition state reaches the
// changelog and Pebble only in snapshots, every SnapshotInterval or
// SnapshotUsers changed users: between two, the input since the last
// snapshot and the recorded clock moves are what make it durable (a
// partition reopened elsewhere replays them, see open). With force, every
// partition with changes is snapshot (a clean shutdown).
func (p *Processor) batch(ctx context.Context, s session, fs kgo.Fetches, force bool) error {
	start := time.Now()
	now := p.cfg.Clock.Now()
	p.produced = p.produced[:0]
	touched := false
	fetched := map[int32][]*kgo.Record{}
	fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
		part := p.parts[ftp.Partition]
		if part == nil || ftp.Topic != p.cfg.Topics.Events {
			return // revoked meanwhile: this batch aborts anyway
		}
		if ftp.Err == nil {
			part.end = ftp.LastStableOffset
			if part.end < 0 { // a broker without transactions
				part.end = ftp.HighWatermark
			}
			if ftp.HighWatermark >= 0 {
				part.hwm = ftp.HighWatermark
			}
		}
		if len(ftp.Records) > 0 {
			touched = true
			fetched[ftp.Partition] = append(fetched[ftp.Partition], ftp.Records...)
		}
	})
	ids := make([]int32, 0, len(p.parts))
	for id := range p.parts {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	// Partitions are independent (a task, a store and a clock each; the
	// engine is shared and safe for concurrent use): they are processed
	// side by side, one core each.
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, id := range ids {
		part := p.parts[id]
		recs := fetched[id]
		g.Go(func() error {
			part.produced = part.produced[:0]
			clear(part.traces)
			for _, r := range recs {
				if r.Offset < part.consumed {
					// Applied when the partition was opened: the client
					// resumed from an older commit than the group's (an
					// End whose outcome was unknown).
					continue
				}
				if !r.Attrs.IsControl() {
					if err := p.input(ctx, part, r, &part.produced, true); err != nil {
						return err
					}
				}
				part.consumed = r.Offset + 1
			}
			// Event time drives the watermark; the wall clock may move
			// it only once the partition has read all there is, as
			// Flink's idle sources do. A backlog is then replayed as a
			// backtest replays it, and an idle partition still fires
			// its timers.
			if part.caughtUp() {
				before := part.task.Clock().C()
				if err := part.task.Advance(now); err != nil {
					return err
				}
				if c := part.task.Clock().C(); !c.Equal(before) {
					part.tick(c)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return p.abort(ctx, s, err)
	}
	pending := false
	snapshotDue := func(part *partition) bool {
		d := part.task.Dirty()
		return d > 0 && (force || d >= p.cfg.SnapshotUsers || now.Sub(part.snapshotAt) >= p.cfg.SnapshotInterval)
	}
	for _, id := range ids {
		part := p.parts[id]
		p.produced = append(p.produced, part.produced...)
		pending = pending || part.task.HasOutput() || snapshotDue(part)
	}
	// A transaction that commits no offsets costs franz-go half a second
	// (it cannot know the broker has KIP-447), and the next transaction
	// waits for it: output the wall clock brought out with no input read,
	// or a snapshot due, waits briefly for records to commit with, and
	// goes alone only if none come.
	if !touched && !force && pending && len(p.produced) == 0 {
		// Real time, not the (possibly simulated) clock: this waits for
		// records to arrive.
		if p.heldSince.IsZero() {
			p.heldSince = start
		}
		if start.Sub(p.heldSince) < holdOutput {
			return nil // progress is reported once the output is committed
		}
	}
	p.heldSince = time.Time{}
	outs := make([]task.Output, len(ids))
	for i, id := range ids {
		part := p.parts[id]
		outs[i] = part.task.Take()
		if len(outs[i].Commands) > 0 || len(outs[i].Suppressions) > 0 {
			touched = true
		}
		if snapshotDue(part) {
			touched = true
			g.Go(func() error {
				w, err := part.task.SnapshotForReplay(part.consumed, maxSnapshotSkips)
				if err != nil {
					return err
				}
				// The snapshot reflects every input record read and
				// every clock move so far: the recorded moves are
				// obsolete.
				for _, k := range part.ticks {
					w.Changes = append(w.Changes, task.Change{Key: k})
				}
				w.Changes = append(w.Changes, task.Change{Key: store.SnapshotKey(), Value: store.EncodeSnapshot(w.Resume, w.Skip)})
				part.write, part.unsent = w, nil
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return p.abort(ctx, s, err)
	}
	if !touched && len(p.produced) == 0 {
		p.updateProgress()
		return nil
	}
	if err := s.Begin(); err != nil {
		return p.abort(ctx, s, fmt.Errorf("begin transaction: %w", err))
	}
	// A span per transaction, linked to the traced events it read; each
	// send-command gets a span of its own, child of its event's (or of the
	// batch's, for a timer or an event of an earlier batch), whose context
	// its record carries to the sink.
	spanCtx, span := p.startBatchSpan(ctx, start, ids, outs)
	txnOutcome := "aborted"
	defer func() { p.endBatchSpan(span, txnOutcome) }()
	// The crash points of a faults build count only batches that emit
	// send-commands: the moments where a crash can lose or double one.
	emits := false
	for i := range outs {
		emits = emits || len(outs[i].Commands) > 0
	}
	if emits {
		crashpoint.Hit(crashpoint.BeforeProduce)
	}
	// Promises run on the client's goroutines; they only touch these
	// locals, so a batch abandoned at shutdown leaves no race behind.
	var mu sync.Mutex
	var perr error
	var wg sync.WaitGroup
	lastOffset := map[int32]int64{}
	produce := func(r *kgo.Record, changelogOf int32) {
		wg.Add(1)
		s.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil && perr == nil {
				perr = err
			}
			if changelogOf >= 0 && err == nil && r.Offset > lastOffset[changelogOf] {
				lastOffset[changelogOf] = r.Offset
			}
		})
	}
	for _, r := range p.produced {
		produce(r, -1)
	}
	for n, id := range ids {
		part := p.parts[id]
		out := outs[n]
		for i := range out.Commands {
			cmd := &out.Commands[i]
			v, err := schema.MarshalCommand(cmd)
			if err != nil {
				return p.abort(ctx, s, err)
			}
			rec := &kgo.Record{Topic: p.cfg.Topics.Commands, Key: []byte(cmd.UserID), Value: v, Timestamp: cmd.SendAt}
			p.traceCommand(spanCtx, part, cmd, rec)
			produce(rec, -1)
		}
		// Clock moves are committed with the input and outputs that
		// follow them: a replay of the input meets them at the same
		// places.
		for _, t := range part.unsent {
			produce(&kgo.Record{Topic: p.cfg.Topics.Changelog, Partition: id, Key: store.TickKey(t.pos, t.c), Value: tickValue()}, -1)
		}
		if part.write != nil {
			for _, ch := range part.write.Changes {
				produce(&kgo.Record{Topic: p.cfg.Topics.Changelog, Partition: id, Key: ch.Key, Value: ch.Value}, id)
			}
		}
	}
	if emits && crashpoint.Armed(crashpoint.AfterProduce) {
		s.Client().Flush(ctx) // the records reach the broker, the commit never does
		crashpoint.Crash()
	}
	endStart := time.Now()
	committed, err := s.End(ctx, kgo.TryCommit)
	endSecs := time.Since(endStart).Seconds()
	if err != nil {
		// Records still buffered (a dead connection, a cancelled context)
		// would never call their promises: fail them, so that none goes
		// out after the abort.
		actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if aerr := s.Client().AbortBufferedRecords(actx); aerr != nil {
			p.cfg.Logger.Warn("abort buffered records", "err", aerr)
		}
		cancel()
	}
	promised := make(chan struct{})
	go func() { wg.Wait(); close(promised) }()
	select {
	case <-promised:
	case <-ctx.Done():
		return ctx.Err() // shutting down: the batch is abandoned, not applied
	}
	if p.cfg.Logger.Enabled(ctx, slog.LevelDebug) {
		p.logEnded(ctx, s, ids, outs, committed, err, time.Since(endStart), time.Since(start))
	}
	if err == nil && perr != nil {
		err = perr
	}
	if err != nil || !committed {
		p.m.txns.Add(ctx, 1, outcome("aborted"))
		p.m.txnSeconds.Record(ctx, endSecs, outcome("aborted"))
		if isFenced(err) {
			return errFenced
		}
		if err != nil {
			// The commit may have reached the broker or not (a broker
			// gone mid-EndTxn): the client's view of the committed
			// offsets cannot tell. Every partition is reopened from the
			// group's, as on an assignment. The transaction is ended
			// first if the client still holds it open, so that its
			// pending offsets do not hold up the group's answer until
			// the broker times it out.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			s.End(actx, kgo.TryAbort)
			cancel()
			p.drop()
			return err
		}
		return p.reset(ctx, errAborted)
	}
	txnOutcome = "committed"
	p.m.txns.Add(ctx, 1, outcome("committed"))
	p.m.txnSeconds.Record(ctx, endSecs, outcome("committed"))
	for n, id := range ids {
		part := p.parts[id]
		part.committed = part.consumed
		for _, t := range part.unsent {
			part.ticks = append(part.ticks, store.TickKey(t.pos, t.c))
		}
		part.unsent = nil
		if w := part.write; w != nil {
			crashpoint.Hit(crashpoint.AfterCommit)
			part.write = nil
			part.ticks = nil
			part.checkpoint = lastOffset[id]
			if err := w.Apply(ctx,
				store.Meta{Name: metaChangelogOffset, Value: part.checkpoint},
				store.Meta{Name: metaAppliedAt, Value: now.Unix()}); err != nil {
				// Kafka has the snapshot; the store catches up from the
				// changelog when the partition is next opened.
				return fmt.Errorf("apply snapshot to partition %d store: %w", id, err)
			}
			part.snapshotAt = now
		}
		out := outs[n]
		p.m.record(ctx, &out)
		for _, e := range out.Errors {
			p.cfg.Logger.Warn("rule evaluation failed", "partition", id, "err", e)
		}
	}
	p.m.batchSeconds.Record(ctx, time.Since(start).Seconds())
	p.updateProgress()
	return nil
}

// logEnded logs, at debug level, what a transaction carried and how it
// ended: the offsets each partition read to, the commands by id (hashes,
// nothing about the user), and the producer's id and epoch, so that a
// command found twice can be traced to the transactions that wrote it.
func (p *Processor) logEnded(ctx context.Context, s session, ids []int32, outs []task.Output, committed bool, err error, end, batch time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, time.Second) // a log line waits for no broker
	pid, epoch, _ := s.Client().ProducerID(pctx)
	cancel()
	for n, id := range ids {
		part := p.parts[id]
		cmds := make([]string, len(outs[n].Commands))
		for i := range outs[n].Commands {
			cmds[i] = outs[n].Commands[i].ID
		}
		p.cfg.Logger.Debug("transaction ended", "partition", id, "committed", committed, "err", err,
			"from", part.committed, "to", part.consumed, "ticks", len(part.unsent), "snapshot", part.write != nil,
			"commands", cmds, "producer_id", pid, "producer_epoch", epoch,
			"seconds", end.Seconds(), "batch_seconds", batch.Seconds())
	}
}

// tickValue is the value of a recorded clock move. Not empty: Kafka
// clients may not tell an empty value from a null one, which deletes.
func tickValue() []byte { return []byte{1} }

func (p *Processor) updateProgress() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stores = make(map[int32]*store.DB, len(p.parts))
	for id, part := range p.parts {
		if !p.assigned[id] {
			continue // revoked: the next rebalance step closes it
		}
		ev, tm := part.task.Pending()
		p.progress[id] = Progress{Committed: part.committed, Watermark: part.task.Watermark(), Buffered: ev, Timers: tm,
			CaughtUp: part.caughtUp() && part.committed >= part.end, HighWatermark: part.hwm}
		p.stores[id] = part.db
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// input handles one record: decode, route, or dead-letter into out; an
// event applied moves its partition's clock to its time.
func (p *Processor) input(ctx context.Context, part *partition, r *kgo.Record, out *[]*kgo.Record, count bool) error {
	ev, err := schema.DecodeEvent(r.Value)
	if err == nil {
		err = schema.CheckArrival(&ev, r.Timestamp, p.cfg.Pack.Policy.MaxFutureSkew)
	}
	if err != nil {
		var ve *schema.ValidationError
		// A ValidationError names fields and positions only; any other
		// error is not quoted, as it could hold the record's bytes.
		reason, msg := schema.ReasonNotJSON, "record does not decode"
		if errors.As(err, &ve) {
			reason, msg = ve.Reason, ve.Error()
		}
		dl := schema.DeadLetter{Key: r.Key, Value: r.Value, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Reason: reason, Message: msg}
		rec := &kgo.Record{Topic: p.cfg.Topics.EventsDLQ, Key: r.Key, Value: r.Value}
		for _, h := range dl.Headers() {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		*out = append(*out, rec)
		if count {
			p.m.deadLetter(ctx, reason)
		}
		return nil
	}
	if p.tracer != nil {
		if sc := tracing.SpanContext(r); sc.IsValid() {
			if part.traces == nil {
				part.traces = map[string]trace.SpanContext{}
			}
			part.traces[ev.MessageID] = sc
		}
	}
	key := []byte(ev.UserKey())
	part.keyRec.Key = key
	if want := int32(part.keyPart.Partition(&part.keyRec, p.nparts)); want != r.Partition && !rerouted(r) {
		// Keyed with another partitioner (librdkafka's CRC32) or by
		// another field: send it where its user's state lives.
		rec := &kgo.Record{Topic: p.cfg.Topics.Events, Key: key, Value: r.Value, Headers: append(append([]kgo.RecordHeader(nil), r.Headers...),
			kgo.RecordHeader{Key: headerRerouted, Value: []byte(strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10))}),
			Timestamp: r.Timestamp}
		*out = append(*out, rec)
		if count {
			p.m.events.Add(ctx, 1, outcome("misrouted"))
		}
		return nil
	}
	if err := part.task.Offer(task.Input{Event: ev, Raw: r.Value, Seq: r.Offset}); err != nil {
		return err
	}
	return part.task.Advance(ev.Timestamp)
}

// errAborted is a batch whose transaction the session aborted, as it does
// when partitions are revoked mid-batch.
var errAborted = errors.New("transaction aborted")

// headerRerouted marks a record the processor moved to its user's
// partition; it is never moved twice (the partition count may have changed).
const headerRerouted = "microtrigger.rerouted-from"

func rerouted(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == headerRerouted {
			return true
		}
	}
	return false
}

func (p *Processor) abort(ctx context.Context, s session, cause error) error {
	if _, err := s.End(ctx, kgo.TryAbort); err != nil && isFenced(err) {
		return errFenced
	}
	return p.reset(ctx, cause)
}

// reset drops every partition's uncommitted work: each is reopened, from
// its store and changelog and a replay of its input up to the last commit.
// The client has rewound to the committed offsets.
func (p *Processor) reset(ctx context.Context, cause error) error {
	ids := make([]int32, 0, len(p.parts))
	for id := range p.parts {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		old := p.parts[id]
		if err := old.close(); err != nil {
			p.cfg.Logger.Warn("close partition store", "partition", id, "err", err)
		}
		part, err := p.open(ctx, id, old.committed)
		if err != nil {
			// This one and those not reset yet, whose state holds the
			// aborted work, are reopened from the group's offsets by the
			// next rebalance.
			delete(p.parts, id)
			p.m.assigned.Add(ctx, -1)
			p.drop()
			return errors.Join(cause, fmt.Errorf("reset partition %d after abort: %w", id, err))
		}
		part.end = old.end
		p.parts[id] = part
	}
	return cause
}

// drop closes every partition. The next rebalance reopens those still
// assigned from the group's committed offsets; none is ready meanwhile.
func (p *Processor) drop() {
	for id, part := range p.parts {
		if err := part.close(); err != nil {
			p.cfg.Logger.Warn("close partition store", "partition", id, "err", err)
		}
		delete(p.parts, id)
		p.m.assigned.Add(context.Background(), -1)
	}
	p.ready.Store(false)
}

func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
}

// storeMetrics returns the metrics of every owned partition's store, and
// those of the block cache they share. A store closed since the last batch
// reports nothing.
func (p *Processor) storeMetrics() (map[int32]store.Metrics, store.CacheMetrics) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int32]store.Metrics, len(p.stores))
	for id, db := range p.stores {
		if m, ok := db.Metrics(); ok {
			out[id] = m
		}
	}
	var cm store.CacheMetrics
	if p.stores != nil && p.cache != nil {
		cm = store.CacheMetricsOf(p.cache)
	}
	return out, cm
}
