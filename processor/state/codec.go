package state

import (
	"errors"
	"fmt"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Encoding versions. The first byte of every encoded value is its version;
// a reader refuses versions it does not know rather than misread them.
// Version 1 (CBOR) is still read; Marshal writes versionBinary.
const (
	versionCBOR   byte = 1
	versionErased byte = 0xE0
)

// ErrUnknownVersion is returned for an encoding this build cannot read.
var ErrUnknownVersion = errors.New("state: unknown encoding version")

// Codec encodes users deterministically (a compact binary layout, map
// entries sorted by key, times as Unix nanoseconds so that no precision is
// lost): equal states give equal bytes, which the changelog and the
// invariants check rely on.
type Codec struct {
	enc cbor.EncMode
	dec cbor.DecMode
	// bufs pools Marshal's buffers (*encScratch): a Codec is safe for
	// concurrent use.
	bufs sync.Pool
}

// NewCodec builds the codec.
func NewCodec() *Codec {
	enc, err := cbor.EncOptions{
		Sort:          cbor.SortCoreDeterministic,
		Time:          cbor.TimeRFC3339NanoUTC,
		ShortestFloat: cbor.ShortestFloatNone,
		OmitEmpty:     cbor.OmitEmptyGoValue,
	}.EncMode()
	if err != nil {
		panic(err) // static options
	}
	dec, err := cbor.DecOptions{
		DefaultMapType:   nil,
		MaxArrayElements: 1 << 16,
		MaxMapPairs:      1 << 16,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return &Codec{enc: enc, dec: dec}
}

// Marshal encodes u (the compact binary encoding).
func (c *Codec) Marshal(u *User) ([]byte, error) {
	return c.marshalBinary(u)
}

// marshalCBOR is the first encoding, still read; tests compare the two.
func (c *Codec) marshalCBOR(u *User) ([]byte, error) {
	b, err := c.enc.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("encode user state: %w", err)
	}
	out := make([]byte, 0, len(b)+1)
	out = append(out, versionCBOR)
	return append(out, b...), nil
}

// Unmarshal decodes a value written by Marshal, in any known version.
func (c *Codec) Unmarshal(b []byte) (*User, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("decode user state: empty value")
	}
	switch b[0] {
	case versionBinary:
		return unmarshalBinary(b[1:])
	case versionCBOR:
	default:
		return nil, fmt.Errorf("decode user state: version %d: %w", b[0], ErrUnknownVersion)
	}
	u := &User{}
	if err := c.dec.Unmarshal(b[1:], u); err != nil {
		return nil, fmt.Errorf("decode user state: %w", err)
	}
	normalize(u)
	return u, nil
}

// ErasedMarker is the value kept for an erased user: one byte, no data of
// theirs. Its key is the user's hash, so later events for that key are
// recognised and dropped.
func ErasedMarker() []byte { return []byte{versionErased} }

// IsErasedMarker reports whether b is ErasedMarker.
func IsErasedMarker(b []byte) bool { return len(b) == 1 && b[0] == versionErased }

// Clone returns a deep copy of u through the codec.
func (c *Codec) Clone(u *User) (*User, error) {
	b, err := c.Marshal(u)
	if err != nil {
		return nil, err
	}
	return c.Unmarshal(b)
}

// normalize makes decoded values compare like freshly built ones: CBOR
// decodes integers inside `any` as uint64 or int64, while JSON-born values
// are float64.
func normalize(u *User) {
	normalizeMap(u.Traits)
	for _, t := range u.Triggers {
		if t.Run != nil {
			normalizeMap(t.Run.Entry.Properties)
		}
	}
}

func normalizeMap(m map[string]any) {
	for k, v := range m {
		m[k] = normalizeValue(v)
	}
}

func normalizeValue(v any) any {
	switch x := v.(type) {
	case uint64:
		return float64(x)
	case int64:
		return float64(x)
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if ks, ok := k.(string); ok {
				out[ks] = normalizeValue(e)
			}
		}
		return out
	case map[string]any:
		normalizeMap(x)
		return x
	case []any:
		for i := range x {
			x[i] = normalizeValue(x[i])
		}
		return x
	}
	return v
}
