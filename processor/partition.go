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

	"github.com/microtrigger/microtrigger/processor/engine"
	"github.com/microtrigger/microtrigger/processor/store"
	"github.com/microtrigger/microtrigger/processor/task"
)

// metaChangelogOffset is the store's metadata entry holding the offset of
// the last changelog record its state reflects.
const metaChangelogOffset = "changelog-offset"

// partition is one owned partition: its store and task.
type partition struct {
	id   int32
	db   *store.DB
	task *task.Task
	// checkpoint is the changelog offset the store reflects (-1: none).
	checkpoint int64
	// batch collects the current transaction's changes; applied to db
	// after the commit.
	batch *store.Batch
	// produced is the highest changelog offset produced in the current
	// transaction (-1: none).
	produced int64
	// committed is the next input offset after the last committed batch.
	committed int64
	consumed  int64
	// end is the partition's last stable offset as last seen (at
	// assignment, then in every fetch that returned its records); -1
	// unknown.
	end int64
}

// caughtUp reports whether the partition has read everything the broker
// had for it: only then may the wall clock move its watermark.
func (part *partition) caughtUp() bool { return part.end >= 0 && part.consumed >= part.end }

func (p *Processor) partitionDir(id int32) string {
	return filepath.Join(p.cfg.StateDir, fmt.Sprintf("p-%d", id))
}

// open opens a partition's store, catches it up from the changelog and
// builds its task. The store is ready once it reflects the changelog up to
// its last stable offset.
func (p *Processor) open(ctx context.Context, id int32) (*partition, error) {
	start := time.Now()
	db, err := p.openStore(id)
	if err != nil {
		return nil, err
	}
	part := &partition{id: id, db: db, checkpoint: -1, produced: -1, end: -1}
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
	secs := time.Since(start).Seconds()
	p.m.restoreSecs.Record(ctx, secs)
	p.m.restored.Add(ctx, n)
	events, timers := part.task.Pending()
	p.cfg.Logger.Info("partition ready", "partition", id, "changelog_records", n,
		"seconds", fmt.Sprintf("%.3f", secs), "buffered_events", events, "pending_timers", timers)
	return part, nil
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
	opts := store.Options{Logger: p.cfg.Logger, NoWAL: true}
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
	if part.batch != nil {
		part.batch.Discard()
		part.batch = nil
	}
	return errors.Join(part.db.Flush(), part.db.Close())
}

// errFenced reports that another instance took over this instance's
// transactional id: this one must stop.
var errFenced = errors.New("processor: fenced by another instance with the same transactional id")
