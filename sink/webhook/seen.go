package webhook

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/sink/ledger"
)

// seen is the webhook's durable set of the event ids it has published, in
// Pebble: 's' + id → when it was recorded (unix ms, 8 bytes big endian),
// and 'o' + partition (4 bytes) → the next sink-outcomes offset read into
// it. The set is a cache of sink-outcomes, which every instance reads, so
// it holds the ids that any instance published, and an empty directory is
// refilled from the topic.
type seen struct {
	db *pebble.DB
}

const (
	prefixSeen   = 's'
	prefixOffset = 'o'
)

func seenKey(id string) []byte { return append([]byte{prefixSeen}, id...) }

func offsetKey(p int32) []byte {
	k := []byte{prefixOffset, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(k[1:], uint32(p))
	return k
}

func openSeen(dir string, fs vfs.FS, logger *slog.Logger) (*seen, error) {
	if fs == vfs.Default {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("webhook: create %s: %w", dir, err)
		}
	}
	cache := pebble.NewCache(16 << 20)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache:              cache,
		FormatMajorVersion: pebble.FormatNewest,
		FS:                 fs,
		Logger:             ledger.PebbleLogger(logger),
	}
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	opts.EnsureDefaults()
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("webhook: open dedupe store %s: %w", dir, err)
	}
	return &seen{db: db}, nil
}

func (s *seen) close() error { return s.db.Close() }

// has reports whether id was recorded at or after since.
func (s *seen) has(id string, since time.Time) (bool, error) {
	v, closer, err := s.db.Get(seenKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("webhook: read dedupe store: %w", err)
	}
	defer closer.Close()
	return len(v) == 8 && int64(binary.BigEndian.Uint64(v)) >= since.UnixMilli(), nil
}

func putSeen(b *pebble.Batch, id string, at time.Time) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(at.UnixMilli()))
	return b.Set(seenKey(id), v[:], nil)
}

// add records ids this instance has just published.
func (s *seen) add(ids []string, at time.Time) error {
	b := s.db.NewBatch()
	defer b.Close()
	for _, id := range ids {
		if err := putSeen(b, id, at); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("webhook: write dedupe store: %w", err)
	}
	return nil
}

// apply records the ids of sink-outcomes records read from one partition
// and the offset after them. A record that does not decode is skipped: it
// holds no id to remember.
func (s *seen) apply(p int32, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, r := range recs {
		o, err := UnmarshalOutcome(r.Value)
		if err != nil {
			continue
		}
		if err := putSeen(b, o.ID, r.Timestamp); err != nil {
			return err
		}
	}
	var off [8]byte
	binary.BigEndian.PutUint64(off[:], uint64(recs[len(recs)-1].Offset+1))
	if err := b.Set(offsetKey(p), off[:], nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("webhook: write dedupe store: %w", err)
	}
	return nil
}

// offset returns the next offset of partition p to read, if one is stored.
func (s *seen) offset(p int32) (int64, bool, error) {
	v, closer, err := s.db.Get(offsetKey(p))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("webhook: read dedupe store: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, nil
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// expire removes the ids recorded before cutoff and returns how many.
func (s *seen) expire(cutoff time.Time) (int, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixSeen}, UpperBound: []byte{prefixSeen + 1}})
	if err != nil {
		return 0, fmt.Errorf("webhook: scan dedupe store: %w", err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		v := it.Value()
		if len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < cutoff.UnixMilli() {
			if err := b.Delete(it.Key(), nil); err != nil {
				it.Close()
				return 0, err
			}
			n++
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, fmt.Errorf("webhook: scan dedupe store: %w", err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, fmt.Errorf("webhook: expire dedupe store: %w", err)
	}
	return n, nil
}
