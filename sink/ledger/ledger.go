package ledger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// ErrNotAssigned is returned for a partition the ledger has not opened.
var ErrNotAssigned = errors.New("ledger: partition not assigned")

// State is the delivery state of a command.
type State byte

// States of an entry; see the package documentation.
const (
	InFlight   State = 1
	Sent       State = 2
	Unknown    State = 3
	Expired    State = 4
	Unresolved State = 5
)

func (s State) String() string {
	switch s {
	case InFlight:
		return "in_flight"
	case Sent:
		return "sent"
	case Unknown:
		return "unknown"
	case Expired:
		return "expired"
	case Unresolved:
		return "unresolved"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Entry is the ledger's record of one command.
type Entry struct {
	State State
	// At is when the state was recorded; for Unresolved, when the request
	// whose answer never came was made.
	At time.Time
	// Deadline, Note and Source are set for Unresolved entries only:
	// until when the sink waits for evidence, why the outcome is unknown
	// (a sentence for the dead letter), and the command's record, so that
	// it can be dead-lettered once its send-commands offset is committed.
	Deadline time.Time
	Note     string
	Source   *Source
}

// Source is the send-commands record of an Unresolved command; its
// partition is the entry's.
type Source struct {
	Offset     int64
	Key, Value []byte
}

// Pending is an entry still waiting for an outcome: InFlight (a request
// carrying it may be on its way, or was when a run stopped) or Unresolved.
type Pending struct {
	ID       string
	State    State
	At       time.Time
	Deadline time.Time // Unresolved only
}

func pendingState(s State) bool { return s == InFlight || s == Unresolved }

// Change sets (or, with a nil Entry, removes) the entry of a command.
type Change struct {
	Partition int32
	ID        string
	Entry     *Entry
}

// Config configures a Ledger.
type Config struct {
	// Dir holds one Pebble store per partition (Dir/p-N). Required.
	Dir string
	// Topic is the compacted changelog topic. Required.
	Topic string
	// Producer writes the changelog. Its partitioner must honour
	// Record.Partition for Topic: see [Partitioner].
	Producer *kgo.Client
	// Kafka are the options of the short-lived clients that read the
	// changelog on assignment (seed brokers, TLS, SASL).
	Kafka []kgo.Opt
	// CacheSize is each store's block cache. Default 32 MiB.
	CacheSize int64
	// FS replaces the file system (tests). Default the real one.
	FS vfs.FS
	// Logger receives restore progress and Pebble's messages. Default
	// discard.
	Logger *slog.Logger
	// Meter receives microtrigger_sink_ledger_write_duration_seconds.
	// Default no-op.
	Meter metric.MeterProvider
	// Progress, when set, is called before each fetch of a restore: a long
	// restore is progress, for the sink's liveness.
	Progress func()
}

// Ledger holds the open partitions.
type Ledger struct {
	cfg   Config
	mu    sync.RWMutex
	parts map[int32]*partition
	// writing makes Records one at a time, from their changelog write to
	// their store write: the offset a store keeps says how far the
	// changelog is applied, and it may not pass a record that another
	// Record has written to the changelog and not yet to the store (a
	// crash in between would lose that record's change on restart).
	writing sync.Mutex
	// produced, in tests, runs between a Record's changelog write and its
	// store write.
	produced func()
	// writeSeconds times Record's changelog writes.
	writeSeconds metric.Float64Histogram
}

type partition struct {
	id   int32
	db   *pebble.DB
	mu   sync.Mutex // orders offset updates; guards pending
	next int64      // next changelog offset to read
	// pending mirrors the store's pending index: the few entries InFlight
	// or Unresolved, without scanning the ledger for them.
	pending map[string]Pending
}

// New returns a ledger with no partition open.
func New(cfg Config) (*Ledger, error) {
	if cfg.Dir == "" || cfg.Topic == "" || cfg.Producer == nil {
		return nil, fmt.Errorf("ledger: Dir, Topic and Producer are required")
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 32 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FS == nil {
		cfg.FS = vfs.Default
	}
	if cfg.Meter == nil {
		cfg.Meter = noop.NewMeterProvider()
	}
	l := &Ledger{cfg: cfg, parts: map[int32]*partition{}}
	// Boundaries in seconds: an acknowledged produce takes milliseconds,
	// and up to the client's retry timeout while a broker is away.
	l.writeSeconds, _ = cfg.Meter.Meter("github.com/microtrigger/microtrigger/sink/ledger").Float64Histogram(
		"microtrigger_sink_ledger_write_duration_seconds",
		metric.WithDescription("Time to write ledger changes to the changelog topic and have them acknowledged, by result (ok, error): every command is recorded before its request and after its answer."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	return l, nil
}

// Key layout: 'c' + command id → entry; 'p' + command id → the pending
// index, for InFlight and Unresolved entries only (state, at, deadline);
// 'm' + "offset" → next changelog offset (8 bytes big endian).
const (
	prefixCommand = 'c'
	prefixMeta    = 'm'
	prefixPending = 'p'
)

func metaOffset() []byte { return []byte{prefixMeta, 'o', 'f', 'f', 's', 'e', 't'} }

func commandKey(id string) []byte { return append([]byte{prefixCommand}, id...) }

func pendingKey(id string) []byte { return append([]byte{prefixPending}, id...) }

func encodePending(p Pending) []byte {
	b := make([]byte, 17)
	b[0] = byte(p.State)
	binary.BigEndian.PutUint64(b[1:], uint64(p.At.UnixMilli()))
	binary.BigEndian.PutUint64(b[9:], uint64(unixMilli(p.Deadline)))
	return b
}

func decodePending(id string, b []byte) (Pending, error) {
	if len(b) != 17 || !pendingState(State(b[0])) {
		return Pending{}, fmt.Errorf("ledger: corrupt pending index entry %x", b)
	}
	return Pending{ID: id, State: State(b[0]), At: atMilli(b[1:]), Deadline: fromMilli(b[9:])}, nil
}

// unixMilli is t in unix milliseconds, 0 for the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func atMilli(b []byte) time.Time { return time.UnixMilli(int64(binary.BigEndian.Uint64(b))).UTC() }

// fromMilli decodes unixMilli's output.
func fromMilli(b []byte) time.Time {
	ms := int64(binary.BigEndian.Uint64(b))
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// EncodeEntry is the changelog and store encoding of an entry: the state
// byte, then the time in unix milliseconds (8 bytes, big endian). An
// Unresolved entry goes on with its deadline (8 bytes), its source offset
// (8 bytes), then its note and source key, each preceded by its length
// (uvarint), and the source value to the end.
func EncodeEntry(e Entry) []byte {
	if e.State != Unresolved {
		b := make([]byte, 9)
		b[0] = byte(e.State)
		binary.BigEndian.PutUint64(b[1:], uint64(e.At.UnixMilli()))
		return b
	}
	var src Source
	if e.Source != nil {
		src = *e.Source
	}
	b := make([]byte, 25, 25+2*binary.MaxVarintLen64+len(e.Note)+len(src.Key)+len(src.Value))
	b[0] = byte(e.State)
	binary.BigEndian.PutUint64(b[1:], uint64(e.At.UnixMilli()))
	binary.BigEndian.PutUint64(b[9:], uint64(unixMilli(e.Deadline)))
	binary.BigEndian.PutUint64(b[17:], uint64(src.Offset))
	b = binary.AppendUvarint(b, uint64(len(e.Note)))
	b = append(b, e.Note...)
	b = binary.AppendUvarint(b, uint64(len(src.Key)))
	b = append(b, src.Key...)
	return append(b, src.Value...)
}

// DecodeEntry decodes EncodeEntry's output.
func DecodeEntry(b []byte) (Entry, error) {
	if len(b) == 9 && b[0] >= byte(InFlight) && b[0] <= byte(Expired) {
		return Entry{State: State(b[0]), At: atMilli(b[1:])}, nil
	}
	if len(b) < 25 || b[0] != byte(Unresolved) {
		return Entry{}, fmt.Errorf("ledger: corrupt entry %x", b[:min(len(b), 32)])
	}
	e := Entry{State: Unresolved, At: atMilli(b[1:]), Deadline: fromMilli(b[9:]),
		Source: &Source{Offset: int64(binary.BigEndian.Uint64(b[17:]))}}
	rest := b[25:]
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return nil, false
		}
		f := rest[k : k+int(n)]
		rest = rest[k+int(n):]
		return f, true
	}
	note, ok1 := field()
	key, ok2 := field()
	if !ok1 || !ok2 {
		return Entry{}, fmt.Errorf("ledger: corrupt unresolved entry of %d bytes", len(b))
	}
	e.Note = string(note)
	e.Source.Key = append([]byte{}, key...)
	e.Source.Value = append([]byte{}, rest...)
	return e, nil
}

// Partitioner returns a partitioner that sends records of topic to the
// partition they name and partitions every other topic by key with Kafka's
// default (murmur2) hash.
func Partitioner(topic string) kgo.Partitioner {
	return partitioner{topic: topic, def: kgo.StickyKeyPartitioner(nil)}
}

type partitioner struct {
	topic string
	def   kgo.Partitioner
}

func (p partitioner) ForTopic(t string) kgo.TopicPartitioner {
	if t == p.topic {
		return kgo.ManualPartitioner().ForTopic(t)
	}
	return p.def.ForTopic(t)
}

// Assign opens the stores of parts and catches each up with the changelog.
func (l *Ledger) Assign(ctx context.Context, parts []int32) error {
	opened := map[int32]*partition{}
	for _, id := range parts {
		l.mu.RLock()
		_, ok := l.parts[id]
		l.mu.RUnlock()
		if ok {
			continue
		}
		p, err := l.open(id)
		if err != nil {
			closeAll(opened)
			return err
		}
		opened[id] = p
	}
	if len(opened) == 0 {
		return nil
	}
	if err := l.restore(ctx, opened); err != nil {
		closeAll(opened)
		return err
	}
	l.mu.Lock()
	for id, p := range opened {
		l.parts[id] = p
	}
	l.mu.Unlock()
	return nil
}

func closeAll(ps map[int32]*partition) {
	for _, p := range ps {
		p.db.Close()
	}
}

func (l *Ledger) open(id int32) (*partition, error) {
	dir := filepath.Join(l.cfg.Dir, "p-"+strconv.Itoa(int(id)))
	if l.cfg.FS == vfs.Default {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("ledger: create %s: %w", dir, err)
		}
	}
	cache := pebble.NewCache(l.cfg.CacheSize)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache:              cache,
		FormatMajorVersion: pebble.FormatNewest,
		FS:                 l.cfg.FS,
		Logger:             PebbleLogger(l.cfg.Logger),
	}
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	opts.EnsureDefaults()
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("ledger: open partition %d store: %w", id, err)
	}
	p := &partition{id: id, db: db, pending: map[string]Pending{}}
	if err := p.loadPending(); err != nil {
		db.Close()
		return nil, err
	}
	v, closer, err := db.Get(metaOffset())
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		db.Close()
		return nil, fmt.Errorf("ledger: read partition %d offset: %w", id, err)
	default:
		if len(v) == 8 {
			p.next = int64(binary.BigEndian.Uint64(v))
		}
		closer.Close()
	}
	return p, nil
}

// restore reads each partition's changelog from its stored offset to the
// end offset listed at the start.
func (l *Ledger) restore(ctx context.Context, parts map[int32]*partition) error {
	adm := kadm.NewClient(l.cfg.Producer)
	ends, err := adm.ListEndOffsets(ctx, l.cfg.Topic)
	if err != nil {
		return fmt.Errorf("ledger: list changelog end offsets: %w", err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("ledger: list changelog end offsets: %w", err)
	}
	want := map[int32]kgo.Offset{}
	end := map[int32]int64{}
	for id, p := range parts {
		o, ok := ends.Lookup(l.cfg.Topic, id)
		if !ok {
			return fmt.Errorf("ledger: changelog %s has no partition %d", l.cfg.Topic, id)
		}
		if p.next > o.Offset {
			// The changelog was recreated or truncated: start over.
			l.cfg.Logger.Warn("ledger ahead of its changelog, rebuilding", "partition", id, "stored", p.next, "end", o.Offset)
			if err := p.reset(); err != nil {
				return err
			}
		}
		if o.Offset > p.next {
			want[id] = kgo.NewOffset().At(p.next)
			end[id] = o.Offset
		}
	}
	if len(want) == 0 {
		return nil
	}
	start := time.Now()
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, l.cfg.Kafka...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{l.cfg.Topic: want}),
	)...)
	if err != nil {
		return fmt.Errorf("ledger: changelog reader: %w", err)
	}
	defer cl.Close()
	n := 0
	for len(end) > 0 {
		if l.cfg.Progress != nil {
			l.cfg.Progress()
		}
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("ledger: read changelog partition %d: %w", p, err))
		})
		if ferr != nil {
			return ferr
		}
		var aerr error
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if aerr != nil || len(fp.Records) == 0 {
				return
			}
			p := parts[fp.Partition]
			changes := make([]Change, 0, len(fp.Records))
			for _, r := range fp.Records {
				c, err := decodeRecord(r)
				if err != nil {
					aerr = err
					return
				}
				changes = append(changes, c)
			}
			last := fp.Records[len(fp.Records)-1].Offset
			if err := p.apply(changes, last+1); err != nil {
				aerr = err
				return
			}
			n += len(changes)
			if last+1 >= end[fp.Partition] {
				delete(end, fp.Partition)
			}
		})
		if aerr != nil {
			return aerr
		}
	}
	l.cfg.Logger.Info("ledger restored", "partitions", len(want), "records", n, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

func decodeRecord(r *kgo.Record) (Change, error) {
	if len(r.Key) == 0 {
		return Change{}, fmt.Errorf("ledger: changelog record %d/%d has no key", r.Partition, r.Offset)
	}
	c := Change{Partition: r.Partition, ID: string(r.Key)}
	if r.Value != nil {
		e, err := DecodeEntry(r.Value)
		if err != nil {
			return Change{}, fmt.Errorf("changelog record %d/%d: %w", r.Partition, r.Offset, err)
		}
		c.Entry = &e
	}
	return c, nil
}

// loadPending reads the pending index.
func (p *partition) loadPending() error {
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixPending}, UpperBound: []byte{prefixPending + 1}})
	if err != nil {
		return fmt.Errorf("ledger: read partition %d pending index: %w", p.id, err)
	}
	for it.First(); it.Valid(); it.Next() {
		id := string(it.Key()[1:])
		pe, err := decodePending(id, it.Value())
		if err != nil {
			it.Close()
			return fmt.Errorf("partition %d: %w", p.id, err)
		}
		p.pending[id] = pe
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("ledger: read partition %d pending index: %w", p.id, err)
	}
	return nil
}

// reset empties a partition's store.
func (p *partition) reset() error {
	b := p.db.NewBatch()
	defer b.Close()
	for _, prefix := range []byte{prefixCommand, prefixPending} {
		if err := b.DeleteRange([]byte{prefix}, []byte{prefix + 1}, nil); err != nil {
			return err
		}
	}
	if err := b.Delete(metaOffset(), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("ledger: reset partition %d: %w", p.id, err)
	}
	p.mu.Lock()
	p.next = 0
	p.pending = map[string]Pending{}
	p.mu.Unlock()
	return nil
}

// apply writes changes and the offset they reach, atomically, keeping the
// pending index in step. The stored offset never moves back.
func (p *partition) apply(changes []Change, next int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.db.NewBatch()
	defer b.Close()
	// This batch's changes to the pending index (nil: removed); p.pending
	// takes them once the batch is committed.
	idx := map[string]*Pending{}
	indexed := func(id string) bool {
		if pe, ok := idx[id]; ok {
			return pe != nil
		}
		_, ok := p.pending[id]
		return ok
	}
	for _, c := range changes {
		var err error
		if c.Entry == nil {
			err = b.Delete(commandKey(c.ID), nil)
		} else {
			err = b.Set(commandKey(c.ID), EncodeEntry(*c.Entry), nil)
		}
		if err != nil {
			return err
		}
		switch {
		case c.Entry != nil && pendingState(c.Entry.State):
			pe := &Pending{ID: c.ID, State: c.Entry.State, At: c.Entry.At, Deadline: c.Entry.Deadline}
			err = b.Set(pendingKey(c.ID), encodePending(*pe), nil)
			idx[c.ID] = pe
		case indexed(c.ID):
			err = b.Delete(pendingKey(c.ID), nil)
			idx[c.ID] = nil
		}
		if err != nil {
			return err
		}
	}
	if next > p.next {
		var off [8]byte
		binary.BigEndian.PutUint64(off[:], uint64(next))
		if err := b.Set(metaOffset(), off[:], nil); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("ledger: apply to partition %d: %w", p.id, err)
	}
	if next > p.next {
		p.next = next
	}
	for id, pe := range idx {
		if pe == nil {
			delete(p.pending, id)
		} else {
			p.pending[id] = *pe
		}
	}
	return nil
}

func (l *Ledger) part(id int32) (*partition, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	p, ok := l.parts[id]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrNotAssigned, id)
	}
	return p, nil
}

// Get returns the entry of a command in a partition, and whether there is
// one.
func (l *Ledger) Get(partition int32, id string) (Entry, bool, error) {
	p, err := l.part(partition)
	if err != nil {
		return Entry{}, false, err
	}
	v, closer, err := p.db.Get(commandKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("ledger: read: %w", err)
	}
	defer closer.Close()
	e, err := DecodeEntry(v)
	return e, err == nil, err
}

// Record writes changes to the changelog, waits for the brokers to
// acknowledge them, then applies them to the stores. When it returns nil
// the changes survive a crash of this process.
func (l *Ledger) Record(ctx context.Context, changes ...Change) error {
	if len(changes) == 0 {
		return nil
	}
	byPart := map[int32][]Change{}
	for _, c := range changes {
		if _, err := l.part(c.Partition); err != nil {
			return err
		}
		byPart[c.Partition] = append(byPart[c.Partition], c)
	}
	recs := make([]*kgo.Record, len(changes))
	for i, c := range changes {
		r := &kgo.Record{Topic: l.cfg.Topic, Partition: c.Partition, Key: []byte(c.ID)}
		if c.Entry != nil {
			r.Value = EncodeEntry(*c.Entry)
		}
		recs[i] = r
	}
	l.writing.Lock()
	defer l.writing.Unlock()
	start := time.Now()
	res := l.cfg.Producer.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		l.writeSeconds.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("result", "error")))
		return fmt.Errorf("ledger: write changelog: %w", err)
	}
	l.writeSeconds.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("result", "ok")))
	if l.produced != nil {
		l.produced()
	}
	last := map[int32]int64{}
	for _, r := range res {
		if r.Record.Offset+1 > last[r.Record.Partition] {
			last[r.Record.Partition] = r.Record.Offset + 1
		}
	}
	for id, cs := range byPart {
		p, err := l.part(id)
		if err != nil {
			return err
		}
		if err := p.apply(cs, last[id]); err != nil {
			return err
		}
	}
	return nil
}

// Pending lists the InFlight and Unresolved entries of a partition, by
// deadline (InFlight ones, which have none, first), then id.
func (l *Ledger) Pending(partition int32) ([]Pending, error) {
	p, err := l.part(partition)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	out := make([]Pending, 0, len(p.pending))
	for _, pe := range p.pending {
		out = append(out, pe)
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Pending) int {
		if c := a.Deadline.Compare(b.Deadline); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Expire removes entries recorded before cutoff, through the changelog
// (tombstones). InFlight and Unresolved entries are kept: the sink
// settles them. It returns how many entries it removed.
func (l *Ledger) Expire(ctx context.Context, cutoff time.Time) (int, error) {
	l.mu.RLock()
	ids := make([]int32, 0, len(l.parts))
	for id := range l.parts {
		ids = append(ids, id)
	}
	l.mu.RUnlock()
	n := 0
	for _, id := range ids {
		p, err := l.part(id)
		if err != nil {
			continue // revoked meanwhile
		}
		var changes []Change
		it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixCommand}, UpperBound: []byte{prefixCommand + 1}})
		if err != nil {
			return n, fmt.Errorf("ledger: scan partition %d: %w", id, err)
		}
		for it.First(); it.Valid(); it.Next() {
			e, err := DecodeEntry(it.Value())
			if err != nil || (!pendingState(e.State) && e.At.Before(cutoff)) {
				changes = append(changes, Change{Partition: id, ID: string(it.Key()[1:])})
			}
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return n, fmt.Errorf("ledger: scan partition %d: %w", id, err)
		}
		for len(changes) > 0 {
			k := min(len(changes), 1000)
			if err := l.Record(ctx, changes[:k]...); err != nil {
				return n, err
			}
			n += k
			changes = changes[k:]
		}
	}
	return n, nil
}

// Revoke closes the stores of parts; their files stay for a later
// assignment.
func (l *Ledger) Revoke(parts []int32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, id := range parts {
		if p, ok := l.parts[id]; ok {
			errs = append(errs, p.db.Close())
			delete(l.parts, id)
		}
	}
	return errors.Join(errs...)
}

// Assigned lists the open partitions.
func (l *Ledger) Assigned() []int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]int32, 0, len(l.parts))
	for id := range l.parts {
		out = append(out, id)
	}
	return out
}

// Close closes every open store.
func (l *Ledger) Close() error { return l.Revoke(l.Assigned()) }

// PebbleLogger sends Pebble's messages to l: informational ones at debug
// level, errors as warnings, fatal ones at error level (then it exits, as
// Pebble's own logger does).
func PebbleLogger(l *slog.Logger) pebble.Logger { return pebbleLogger{l} }

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Warn("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}
