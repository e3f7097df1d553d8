package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrClosed is returned by a closed store.
var ErrClosed = errors.New("store: closed")

// Options configures a store.
type Options struct {
	// Cache, when set, is a block cache shared with other stores (one per
	// process rather than one per partition); the store takes a reference.
	Cache *Cache
	// CacheSize is the store's own block cache when Cache is nil. Default
	// 64 MiB: smaller caches starve reads (FACTS.md).
	CacheSize int64
	// FS, when set, replaces the real file system (tests use vfs.NewMem).
	FS vfs.FS
	// Logger receives Pebble's own messages at debug level. Default discard.
	Logger *slog.Logger
	// Sync makes every applied batch durable before Apply returns. The live
	// driver leaves it off: the changelog topic is the durable copy.
	Sync bool
	// NoWAL turns Pebble's write-ahead log off. Safe where the changelog
	// is the durable copy: a crash loses the memtable, but the checkpoint
	// written with it goes too, so the store restores from the older
	// checkpoint. It also keeps erased values out of log files.
	NoWAL bool
}

// Cache is a Pebble block cache that several stores may share.
type Cache = pebble.Cache

// NewCache returns a block cache of size bytes; Unref releases it once the
// stores using it are closed.
func NewCache(size int64) *Cache { return pebble.NewCache(size) }

// CacheMetrics is what a block cache reports to operators.
type CacheMetrics struct {
	// Hits and Misses count the lookups of blocks since the cache was
	// made; Hits / (Hits + Misses) is the hit rate.
	Hits, Misses int64
	// Bytes is the size of the blocks it holds.
	Bytes int64
}

// CacheMetricsOf returns c's metrics. It is safe for concurrent use.
func CacheMetricsOf(c *Cache) CacheMetrics {
	m := c.Metrics()
	return CacheMetrics{Hits: m.Hits, Misses: m.Misses, Bytes: m.Size}
}

// DB is one partition's store. Its methods are for one goroutine, except
// Metrics, which may be called from any while another closes the store.
type DB struct {
	db    *pebble.DB
	sync  bool
	noWAL bool
	// closing guards db against Close for Metrics.
	closing sync.RWMutex
}

// Open opens (or creates) the store in dir.
func Open(dir string, o Options) (*DB, error) {
	if o.CacheSize == 0 {
		o.CacheSize = 64 << 20
	}
	cache := o.Cache
	if cache == nil {
		cache = pebble.NewCache(o.CacheSize)
		defer cache.Unref() // the DB holds its own reference
	}
	opts := &pebble.Options{
		Cache:              cache,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{o.Logger},
		FS:                 o.FS,
		DisableWAL:         o.NoWAL,
	}
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	// User states are rewritten often: the fastest compression keeps
	// compactions cheap on CPU.
	for i := range opts.Levels {
		opts.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.FastestCompression }
	}
	opts.EnsureDefaults()
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", dir, err)
	}
	return &DB{db: db, sync: o.Sync && !o.NoWAL, noWAL: o.NoWAL}, nil
}

// Close closes the store.
func (d *DB) Close() error {
	d.closing.Lock()
	defer d.closing.Unlock()
	if d.db == nil {
		return ErrClosed
	}
	err := d.db.Close()
	d.db = nil
	return err
}

// Get returns a copy of the value at key, or nil when there is none.
func (d *DB) Get(key []byte) ([]byte, error) {
	v, closer, err := d.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, nil
}

// User returns the encoded state of a user, or nil.
func (d *DB) User(h Hash) ([]byte, error) { return d.Get(UserKey(h)) }

// Meta returns a metadata value, or nil.
func (d *DB) Meta(name string) ([]byte, error) { return d.Get(MetaKey(name)) }

// MetaInt64 returns a metadata integer, and whether it was set.
func (d *DB) MetaInt64(name string) (int64, bool, error) {
	v, err := d.Meta(name)
	if err != nil || len(v) != 8 {
		return 0, false, err
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

func (d *DB) scan(prefix byte, fn func(k, v []byte) error) error {
	return d.iterate(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: prefixEnd(prefix)}, fn)
}

func (d *DB) iterate(o *pebble.IterOptions, fn func(k, v []byte) error) error {
	it, err := d.db.NewIter(o)
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// Clock returns the stored event-time clock, or the zero time.
func (d *DB) Clock() (time.Time, error) {
	v, err := d.Get(ClockKey())
	if err != nil || len(v) != 8 {
		return time.Time{}, err
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(), nil
}

// Timers calls fn for every entry of the due index (in no time order);
// legacy entries (ParseTimer) come with their key, to be deleted.
func (d *DB) Timers(fn func(due time.Time, h Hash, legacyKey []byte) error) error {
	return d.scan(prefixTimer, func(k, v []byte) error {
		due, h, legacy, ok := ParseTimer(k, v)
		if !ok {
			return fmt.Errorf("corrupt timer key %x", k)
		}
		var lk []byte
		if legacy {
			lk = append([]byte(nil), k...)
		}
		return fn(due, h, lk)
	})
}

// Buffered calls fn for every event in the reorder buffer, in (time, seq)
// order. raw is only valid during the call.
func (d *DB) Buffered(fn func(t time.Time, seq int64, raw []byte) error) error {
	return d.scan(prefixBuffer, func(k, v []byte) error {
		t, seq, ok := ParseBufferKey(k)
		if !ok {
			return fmt.Errorf("corrupt buffer key %x", k)
		}
		return fn(t, seq, v)
	})
}

// Ticks calls fn for every recorded clock move, in input order.
func (d *DB) Ticks(fn func(pos int64, c time.Time) error) error {
	return d.scan(prefixTick, func(k, _ []byte) error {
		pos, c, ok := ParseTickKey(k)
		if !ok {
			return fmt.Errorf("corrupt tick key %x", k)
		}
		return fn(pos, c)
	})
}

// HasUsers reports whether the store holds any user value.
func (d *DB) HasUsers() (bool, error) {
	found := false
	err := d.scan(prefixUser, func(_, _ []byte) error {
		found = true
		return errStop
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return found, err
}

var errStop = errors.New("stop")

// Users calls fn for every stored user value (states and erasure markers).
func (d *DB) Users(fn func(h Hash, v []byte) error) error {
	return d.scan(prefixUser, func(k, v []byte) error {
		h, ok := ParseUserKey(k)
		if !ok {
			return fmt.Errorf("corrupt user key %x", k)
		}
		return fn(h, v)
	})
}

// All calls fn for every key and value, in key order (tests and tools).
func (d *DB) All(fn func(k, v []byte) error) error {
	return d.iterate(nil, fn)
}

// Batch is a set of changes applied atomically. Put with a nil value
// deletes; the same (key, value) pairs are the changelog's records.
type Batch struct {
	b *pebble.Batch
}

// NewBatch starts a batch.
func (d *DB) NewBatch() *Batch { return &Batch{b: d.db.NewBatch()} }

// Put sets key to value, or deletes key when value is nil.
func (b *Batch) Put(key, value []byte) error {
	if value == nil {
		return b.b.Delete(key, nil)
	}
	return b.b.Set(key, value, nil)
}

// Meta is a named metadata integer written with a batch.
type Meta struct {
	Name  string
	Value int64
}

// SetMetaInt64 records a metadata integer.
func (b *Batch) SetMetaInt64(name string, v int64) error {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(v))
	return b.b.Set(MetaKey(name), buf[:], nil)
}

// Empty reports whether the batch holds no change.
func (b *Batch) Empty() bool { return b.b.Empty() }

// Apply commits the batch.
func (d *DB) Apply(b *Batch) error {
	opts := pebble.NoSync
	if d.sync {
		opts = pebble.Sync
	}
	if err := d.db.Apply(b.b, opts); err != nil {
		return fmt.Errorf("apply state batch: %w", err)
	}
	return b.b.Close()
}

// Discard drops an unapplied batch.
func (b *Batch) Discard() { b.b.Close() }

// DeleteAll removes every key (a partition restored from the start of its
// changelog begins empty).
func (d *DB) DeleteAll() error {
	b := d.db.NewBatch()
	if err := b.DeleteRange([]byte{0}, []byte{0xff}, nil); err != nil {
		return err
	}
	if d.noWAL {
		if err := d.db.Apply(b, pebble.NoSync); err != nil {
			return err
		}
		return d.db.Flush()
	}
	return d.db.Apply(b, pebble.Sync)
}

// Flush makes everything applied so far durable on disk.
func (d *DB) Flush() error { return d.db.Flush() }

// Purge rewrites the files holding a key range so that overwritten and
// deleted values are physically gone, not only shadowed: after an erasure,
// no byte of the user's old state stays on disk.
func (d *DB) Purge(ctx context.Context, start, end []byte) error {
	if err := d.db.Compact(ctx, start, end, false); err != nil {
		return fmt.Errorf("purge erased state: %w", err)
	}
	return nil
}

// PurgeUser purges a user's key and the reorder buffer, where their
// waiting events were.
func (d *DB) PurgeUser(ctx context.Context, h Hash) error {
	k := UserKey(h)
	end := append(append([]byte(nil), k...), 0)
	if err := d.Purge(ctx, k, end); err != nil {
		return err
	}
	return d.Purge(ctx, []byte{prefixBuffer}, prefixEnd(prefixBuffer))
}

// Metrics is what a store reports to operators, from Pebble's metrics.
type Metrics struct {
	// Compactions counts the compactions since the store was opened.
	Compactions int64
	// CompactionDebt is the bytes Pebble estimates it must compact to
	// reach a stable shape.
	CompactionDebt uint64
	// ReadAmp is the read amplification: the sublevels of L0 plus the
	// non-empty levels below, each a place a read may have to look.
	ReadAmp int
	// DiskBytes is the space the store's files take.
	DiskBytes uint64
}

// Metrics returns the store's metrics, and false once it is closed. It is
// safe to call while another goroutine uses or closes the store.
func (d *DB) Metrics() (Metrics, bool) {
	d.closing.RLock()
	defer d.closing.RUnlock()
	if d.db == nil {
		return Metrics{}, false
	}
	m := d.db.Metrics()
	return Metrics{Compactions: m.Compact.Count, CompactionDebt: m.Compact.EstimatedDebt, ReadAmp: m.ReadAmp(), DiskBytes: m.DiskSpaceUsage()}, true
}

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l != nil {
		p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	if p.l != nil {
		p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	if p.l != nil {
		p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	}
	panic(fmt.Sprintf(format, args...))
}

var _ io.Closer = (*DB)(nil)
