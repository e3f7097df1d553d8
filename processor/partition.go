package processor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/microtrigger/microtrigger/internal/crashpoint"
	"github.com/microtrigger/microtrigger/processor/engine"
	"github.com/microtrigger/microtrigger/processor/store"
	"github.com/microtrigger/microtrigger/processor/task"
)

// metaChangelogOffset is the store's metadata entry holding the offset of
// the last changelog record its state reflects.
const metaChangelogOffset = "changelog-offset"

// metaSnapshot is the metadata entry of store.SnapshotKey.
const metaSnapshot = "snapshot"

// partition is one owned partition: its store and task.
type partition struct {
	id   int32
	db   *store.DB
	task *task.Task
	// checkpoint is the changelog offset the store reflects (-1: none).
	checkpoint int64
	// write is the snapshot of the current transaction, applied to db
	// after the commit.
	write *task.Write
	// snapshotAt is when the last snapshot was applied (wall clock).
	snapshotAt time.Time
	// ticks are the keys of the clock moves committed since the last
	// snapshot, which the next one deletes; unsent are moves not yet
	// written (nothing was committed since).
	ticks  [][]byte
	unsent []tick
	// committed is the next input offset after the last committed batch.
	committed int64
	consumed  int64
	// keyPart and keyRec find the partition of an event's user key
	// (murmur2, as Kafka's Java client); keyRec is reused per record.
	keyPart kgo.TopicPartitioner
	keyRec  kgo.Record
	// produced collects a batch's dead letters and re-routed records.
	produced []*kgo.Record
	// end is the partition's last stable offset as last seen (at
	// assignment, then in every fetch that returned its records); -1
	// unknown.
	end int64
	// hwm is the partition's high watermark as last seen; -1 unknown.
	hwm int64
	// traces are the trace contexts of the batch's events that carried
	// one, by messageId (with tracing on).
	traces map[string]trace.SpanContext
}

// tick is a move of the clock to c by the wall clock, once the input
// before offset pos had been read.
type tick struct {
	pos int64
	c   time.Time
}

// tick records a move of the clock by the wall clock. Moves with no input
// read between them leave the same trace as the last one alone.
func (part *partition) tick(c time.Time) {
	if n := len(part.unsent); n > 0 && part.unsent[n-1].pos == part.consumed {
		part.unsent[n-1].c = c
		return
	}
	part.unsent = append(part.unsent, tick{part.consumed, c})
}

// caughtUp reports whether the partition has read everything the broker
// had for it: only then may the wall clock move its watermark.
func (part *partition) caughtUp() bool { return part.end >= 0 && part.consumed >= part.end }

func (p *Processor) partitionDir(id int32) string {
	return filepath.Join(p.cfg.StateDir, fmt.Sprintf("p-%d", id))
}

// open opens a partition's store, catches it up from the changelog,
// builds its task and replays the input from the store's snapshot up to
// committed, the next input offset after the last committed transaction:
// the partition is then exactly where its last commit left it, whoever
// made it.
func (p *Processor) open(ctx context.Context, id int32, committed int64) (*partition, error) {
	start := time.Now()
	db, err := p.openStore(id)
	if err != nil {
		return nil, err
	}
	// Partitions take their snapshots at different moments of the
	// interval, so that no batch writes them all at once.
	phase := p.cfg.SnapshotInterval * time.Duration(id%int32(max(p.nparts, 1))) / time.Duration(max(p.nparts, 1))
	part := &partition{id: id, db: db, checkpoint: -1, end: -1, hwm: -1, committed: committed, consumed: committed, snapshotAt: p.cfg.Clock.Now().Add(-phase),
		keyPart: kgo.StickyKeyPartitioner(nil).ForTopic(p.cfg.Topics.Events)}
	n, err := p.restore(ctx, part)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("restore partition %d from changelog: %w", id, err)
	}
	part.task, err = task.New(task.Config{
		Engine:     engine.New(p.cfg.Pack, engine.Options{Limits: p.cfg.Limits, Zones: p.cfg.Zones}),
		Store:      db,
		Grace:      p.cfg.Grace,
		CacheUsers: p.cfg.CacheUsers,
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open partition %d: %w", id, err)
	}
	replayed, err := p.replay(ctx, part)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("replay partition %d from its snapshot: %w", id, err)
	}
	secs := time.Since(start).Seconds()
	p.m.restoreSecs.Record(ctx, secs)
	p.m.restored.Add(ctx, n)
	events, timers := part.task.Pending()
	p.cfg.Logger.Info("partition ready", "partition", id, "changelog_records", n, "replayed_records", replayed,
		"seconds", fmt.Sprintf("%.3f", secs), "buffered_events", events, "pending_timers", timers)
	return part, nil
}

// replay brings a freshly opened task from its snapshot to the last
// commit: it reads the input from the snapshot's offset to the committed
// one, with the clock moves recorded in between at their places, and
// applies it as the original run did. What that produced was committed
// then, so it is dropped now.
func (p *Processor) replay(ctx context.Context, part *partition) (int64, error) {
	v, err := part.db.Meta(metaSnapshot)
	if err != nil {
		return 0, err
	}
	from, skip, ok := store.DecodeSnapshot(v)
	if v != nil && !ok {
		return 0, fmt.Errorf("corrupt snapshot marker %x", v)
	}
	if !ok {
		// No snapshot: a new partition (replay all the input there is)
		// or a store written before snapshots existed, whose state is
		// that of the last commit.
		has, err := part.db.HasUsers()
		if err != nil {
			return 0, err
		}
		if has {
			from = part.committed
		}
	}
	var ticks []tick
	if err := part.db.Ticks(func(pos int64, c time.Time) error {
		ticks = append(ticks, tick{pos, c})
		part.ticks = append(part.ticks, store.TickKey(pos, c))
		return nil
	}); err != nil {
		return 0, err
	}
	to := part.committed
	advanceTo := func(pos int64) error {
		for len(ticks) > 0 && ticks[0].pos <= pos {
			if err := part.task.Advance(ticks[0].c); err != nil {
				return err
			}
			ticks = ticks[1:]
		}
		return nil
	}
	var n int64
	if from < to {
		cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), p.cfg.Kafka...),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{p.cfg.Topics.Events: {part.id: kgo.NewOffset().At(from)}}),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.KeepControlRecords(),
		)...)
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		var dropped []*kgo.Record
		for pos := from; pos < to; {
			p.beat() // a long replay is progress
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return n, err
			}
			var ferr error
			fs.EachError(func(_ string, _ int32, err error) { ferr = err })
			if ferr != nil {
				return n, ferr
			}
			fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
				if pos == from && ftp.LogStartOffset > from {
					p.cfg.Logger.Warn("input since the snapshot is partly gone (the events topic's retention is shorter than the snapshot interval): the state misses it",
						"partition", part.id, "snapshot_offset", from, "log_start_offset", ftp.LogStartOffset)
				}
			})
			fs.EachRecord(func(r *kgo.Record) {
				if ferr != nil {
					return
				}
				if r.Offset >= to {
					// Nothing before the committed offset is left (the
					// input's retention removed it): the replay is done.
					pos = to
					return
				}
				if ferr = advanceTo(r.Offset); ferr != nil {
					return
				}
				for len(skip) > 0 && skip[0] < r.Offset {
					skip = skip[1:]
				}
				if len(skip) > 0 && skip[0] == r.Offset {
					skip = skip[1:] // in the snapshot already
				} else if !r.Attrs.IsControl() {
					ferr = p.input(ctx, part, r, &dropped, false)
					n++
				}
				pos = r.Offset + 1
			})
			if ferr != nil {
				return n, ferr
			}
			dropped = dropped[:0]
		}
	}
	if err := advanceTo(to); err != nil {
		return n, err
	}
	part.task.Take() // committed before
	return n, nil
}

// metaAppliedAt is the wall-clock time (unix seconds) of the last batch the
// store applied.
const metaAppliedAt = "applied-at"

// openStore opens a partition's store. A store last written longer ago than
// Config.StaleStoreAfter is discarded: the changelog may have compacted
// away tombstones it never saw (an erased user's waiting events, a
// cancelled timer), so it is rebuilt from the start of the changelog.
func (p *Processor) openStore(id int32) (*store.DB, error) {
	dir := p.partitionDir(id)
	opts := store.Options{Logger: p.cfg.Logger, NoWAL: true, Cache: p.cache}
	db, err := store.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	at, ok, err := db.MetaInt64(metaAppliedAt)
	if err != nil {
		db.Close()
		return nil, err
	}
	if !ok || p.cfg.Clock.Now().Sub(time.Unix(at, 0)) <= p.cfg.StaleStoreAfter {
		return db, nil
	}
	p.cfg.Logger.Info("discarding a stale partition store", "partition", id, "last_written", time.Unix(at, 0).UTC())
	if err := db.Close(); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("discard stale store of partition %d: %w", id, err)
	}
	return store.Open(dir, opts)
}

// restore applies the changelog records the store has not seen. A store
// without a checkpoint (a new volume) is emptied and rebuilt from the start.
func (p *Processor) restore(ctx context.Context, part *partition) (int64, error) {
	cp, ok, err := part.db.MetaInt64(metaChangelogOffset)
	if err != nil {
		return 0, err
	}
	from := int64(0)
	if ok {
		part.checkpoint = cp
		from = cp + 1
	} else if err := part.db.DeleteAll(); err != nil {
		return 0, err
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), p.cfg.Kafka...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			p.cfg.Topics.Changelog: {part.id: kgo.NewOffset().At(from)},
		}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, p.cfg.Topics.Changelog)
	if err != nil {
		return 0, fmt.Errorf("list changelog end offsets: %w", err)
	}
	end, found := ends.Lookup(p.cfg.Topics.Changelog, part.id)
	if !found {
		return 0, fmt.Errorf("changelog topic %s has no partition %d: it must have as many partitions as %s",
			p.cfg.Topics.Changelog, part.id, p.cfg.Topics.Events)
	}
	if end.Err != nil {
		return 0, end.Err
	}
	if end.Offset <= from {
		return 0, nil
	}
	var n int64
	b := part.db.NewBatch()
	pending := 0
	lastLog := time.Now()
	for done := false; !done; {
		p.beat() // a long restore is progress
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			b.Discard()
			return n, err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			b.Discard()
			return n, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if done || r.Offset >= end.Offset {
				done = true
				return
			}
			if !r.Attrs.IsControl() {
				if err := b.Put(r.Key, r.Value); err != nil && ferr == nil {
					ferr = err
				}
				n++
				pending++
			}
			part.checkpoint = r.Offset
			if r.Offset >= end.Offset-1 {
				done = true
			}
		})
		if ferr != nil {
			b.Discard()
			return n, ferr
		}
		if pending >= 10000 || done {
			crashpoint.Hit(crashpoint.MidRestore)
			if err := b.SetMetaInt64(metaChangelogOffset, part.checkpoint); err != nil {
				return n, err
			}
			if err := b.SetMetaInt64(metaAppliedAt, p.cfg.Clock.Now().Unix()); err != nil {
				return n, err
			}
			if err := part.db.Apply(b); err != nil {
				return n, err
			}
			b, pending = part.db.NewBatch(), 0
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			p.cfg.Logger.Info("restoring partition", "partition", part.id, "records", n,
				"offset", part.checkpoint, "end", end.Offset)
		}
	}
	b.Discard()
	return n, nil
}

// close flushes the store (it has no write-ahead log) and closes it.
func (part *partition) close() error {
	part.write = nil
	return errors.Join(part.db.Flush(), part.db.Close())
}

// errFenced reports that another instance took over this instance's
// transactional id: this one must stop.
var errFenced = errors.New("processor: fenced by another instance with the same transactional id")
