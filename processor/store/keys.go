package store

import (
	"encoding/binary"
	"time"
)

// Key prefixes. One byte each, so the key spaces never interleave.
const (
	prefixUser   = 'u' // u + user hash (16)          → encoded state.User, or the erased marker
	prefixTimer  = 't' // t + user hash (16)          → due (8); the user's next timer
	prefixBuffer = 'b' // b + event time (8) + seq (8) → raw event bytes
	prefixMeta   = 'm' // m + name                     → value
	prefixTick   = 'k' // k + input offset (8) + clock (8) → {1}
)

// Hash is a user's pseudonymous key (schema.UserHash).
type Hash = [16]byte

// UserKey returns the store key of a user.
func UserKey(h Hash) []byte {
	k := make([]byte, 17)
	k[0] = prefixUser
	copy(k[1:], h[:])
	return k
}

// TimerKey returns the due-index key of a user's next timer. Keyed by the
// user alone, so that replacing a timer needs nothing but the user's
// state, which holds the due time; the value is TimerValue.
func TimerKey(h Hash) []byte {
	k := make([]byte, 17)
	k[0] = prefixTimer
	copy(k[1:], h[:])
	return k
}

// TimerValue encodes a due time for TimerKey.
func TimerValue(due time.Time) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], orderedTime(due))
	return b[:]
}

// BufferKey returns the key of an event waiting in the reorder buffer.
func BufferKey(t time.Time, seq int64) []byte {
	k := make([]byte, 17)
	k[0] = prefixBuffer
	binary.BigEndian.PutUint64(k[1:9], orderedTime(t))
	binary.BigEndian.PutUint64(k[9:17], uint64(seq))
	return k
}

// MetaKey returns the key of a metadata entry.
func MetaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

// orderedTime maps times to integers whose byte order is time order.
func orderedTime(t time.Time) uint64 { return uint64(t.UnixNano()) ^ (1 << 63) }

func timeOf(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)^(1<<63))).UTC()
}

// ParseTimer decodes a due-index entry. It also reads the layout of
// stores written before TimerKey was keyed by user alone (t + due + hash,
// 25 bytes, empty value); legacy reports such an entry.
func ParseTimer(k, v []byte) (due time.Time, h Hash, legacy, ok bool) {
	switch {
	case len(k) == 17 && k[0] == prefixTimer && len(v) == 8:
		copy(h[:], k[1:])
		return timeOf(v), h, false, true
	case len(k) == 25 && k[0] == prefixTimer:
		copy(h[:], k[9:])
		return timeOf(k[1:9]), h, true, true
	}
	return time.Time{}, h, false, false
}

// ParseBufferKey decodes a BufferKey.
func ParseBufferKey(k []byte) (time.Time, int64, bool) {
	if len(k) != 17 || k[0] != prefixBuffer {
		return time.Time{}, 0, false
	}
	return timeOf(k[1:9]), int64(binary.BigEndian.Uint64(k[9:17])), true
}

// ParseUserKey decodes a UserKey.
func ParseUserKey(k []byte) (Hash, bool) {
	var h Hash
	if len(k) != 17 || k[0] != prefixUser {
		return h, false
	}
	copy(h[:], k[1:])
	return h, true
}

func prefixEnd(p byte) []byte { return []byte{p + 1} }

// ClockKey holds a partition's event-time clock. Unlike the other metadata
// it is part of the replicated state: it travels in the changelog.
func ClockKey() []byte { return MetaKey("clock") }

// EncodeClock encodes a clock value for ClockKey.
func EncodeClock(t time.Time) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.UnixNano()))
	return b[:]
}

// SnapshotKey holds the input offset a partition's state snapshot reflects:
// every input record before it, none after. It travels in the changelog
// with the snapshot.
func SnapshotKey() []byte { return MetaKey("snapshot") }

// EncodeSnapshot encodes the value of SnapshotKey: the input offset a
// replay starts from, and the offsets after it it passes over (their
// inputs are in the snapshot already), as deltas.
func EncodeSnapshot(resume int64, skip []int64) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(resume))
	prev := resume
	for _, s := range skip {
		b = binary.AppendUvarint(b, uint64(s-prev))
		prev = s
	}
	return b
}

// DecodeSnapshot decodes EncodeSnapshot's value (a value of 8 bytes is an
// offset with nothing to pass over).
func DecodeSnapshot(v []byte) (resume int64, skip []int64, ok bool) {
	if len(v) < 8 {
		return 0, nil, false
	}
	resume = int64(binary.BigEndian.Uint64(v))
	prev := resume
	for v = v[8:]; len(v) > 0; {
		d, n := binary.Uvarint(v)
		if n <= 0 {
			return 0, nil, false
		}
		prev += int64(d)
		skip = append(skip, prev)
		v = v[n:]
	}
	return resume, skip, true
}

// EncodeInt64 encodes a metadata integer as MetaInt64 reads it.
func EncodeInt64(v int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(v))
	return b[:]
}

// TickKey is the key of a recorded clock move: after the input before
// offset pos had been read, the wall clock moved the partition's clock to
// c. Replaying the input from a snapshot applies the same moves at the same
// places, so the replay decides what the original run decided.
func TickKey(pos int64, c time.Time) []byte {
	k := make([]byte, 17)
	k[0] = prefixTick
	binary.BigEndian.PutUint64(k[1:9], uint64(pos))
	binary.BigEndian.PutUint64(k[9:17], orderedTime(c))
	return k
}

// ParseTickKey decodes a TickKey.
func ParseTickKey(k []byte) (pos int64, c time.Time, ok bool) {
	if len(k) != 17 || k[0] != prefixTick {
		return 0, time.Time{}, false
	}
	return int64(binary.BigEndian.Uint64(k[1:9])), timeOf(k[9:17]), true
}
