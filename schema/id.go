package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// CommandID is the deterministic id of a send-command: a hash of the user,
// the trigger, the step and the cause. Emitting the same firing twice (after
// a crash, or in a replay) gives the same id, which is how the sink
// recognises a duplicate.
func CommandID(userKey, trigger string, step int, cause string) string {
	h := sha256.New()
	h.Write([]byte("cmd\x00"))
	h.Write([]byte(userKey))
	h.Write([]byte{0})
	h.Write([]byte(trigger))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, int64(step), 10))
	h.Write([]byte{0})
	h.Write([]byte(cause))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// ContentID is the messageId given to an event that has none: a hash of its
// bytes, so an identical redelivery is recognised as a duplicate.
func ContentID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// UserHash is the pseudonymous form of a user key, used wherever a key must
// be stored or compared without keeping the key itself (state keys, erasure
// markers, logs).
func UserHash(userKey string) [16]byte {
	h := sha256.New()
	h.Write([]byte("user\x00"))
	h.Write([]byte(userKey))
	var out [16]byte
	copy(out[:], h.Sum(nil))
	return out
}
