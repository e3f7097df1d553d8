package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// versionBinary is the compact encoding: fields in a fixed order, varints,
// times as Unix nanoseconds, map entries sorted by key. It is several times
// faster than CBOR through reflection and about half the size, which the
// store and its compactions feel on every batch.
const versionBinary byte = 2

var errCorrupt = errors.New("state: corrupt encoding")

// enc appends the encoding to b. keys is a stack of map keys being
// sorted, reused from map to map (nested maps push above their parent's).
type enc struct {
	b    []byte
	keys []string
}

func (e *enc) uvarint(x uint64) { e.b = binary.AppendUvarint(e.b, x) }
func (e *enc) varint(x int64)   { e.b = binary.AppendVarint(e.b, x) }
func (e *enc) int(x int)        { e.varint(int64(x)) }
func (e *enc) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) f64(f float64)    { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(f)) }

func (e *enc) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// time writes 0 for the zero time, else 1 and the Unix nanoseconds.
func (e *enc) time(t time.Time) {
	if t.IsZero() {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	e.varint(t.UnixNano())
}

// encMap writes m's length, then each key and value in key order.
func encMap[V any](e *enc, m map[string]V, val func(V)) {
	e.uvarint(uint64(len(m)))
	switch len(m) {
	case 0:
		return
	case 1:
		for k, v := range m {
			e.str(k)
			val(v)
		}
		return
	}
	start := len(e.keys)
	for k := range m {
		e.keys = append(e.keys, k)
	}
	end := len(e.keys)
	slices.Sort(e.keys[start:end])
	// val may push keys of its own (nested objects) and move e.keys.
	for i := start; i < end; i++ {
		k := e.keys[i]
		e.str(k)
		val(m[k])
	}
	clear(e.keys[start:])
	e.keys = e.keys[:start]
}

// Tags of dynamic values (traits, event properties), as JSON has them.
const (
	tagNull byte = iota
	tagFalse
	tagTrue
	tagNumber
	tagString
	tagList
	tagObject
)

func (e *enc) any(v any) error {
	switch x := v.(type) {
	case nil:
		e.b = append(e.b, tagNull)
	case bool:
		if x {
			e.b = append(e.b, tagTrue)
		} else {
			e.b = append(e.b, tagFalse)
		}
	case float64:
		e.b = append(e.b, tagNumber)
		e.f64(x)
	case int64:
		e.b = append(e.b, tagNumber)
		e.f64(float64(x))
	case int:
		e.b = append(e.b, tagNumber)
		e.f64(float64(x))
	case uint64:
		e.b = append(e.b, tagNumber)
		e.f64(float64(x))
	case string:
		e.b = append(e.b, tagString)
		e.str(x)
	case []any:
		e.b = append(e.b, tagList)
		e.uvarint(uint64(len(x)))
		for _, it := range x {
			if err := e.any(it); err != nil {
				return err
			}
		}
	case map[string]any:
		e.b = append(e.b, tagObject)
		return e.object(x)
	default:
		return fmt.Errorf("encode user state: value of type %T", v)
	}
	return nil
}

func (e *enc) object(m map[string]any) error {
	var err error
	encMap(e, m, func(v any) {
		if verr := e.any(v); verr != nil && err == nil {
			err = verr
		}
	})
	return err
}

func (e *enc) entry(x *Entry) error {
	e.str(x.ID)
	e.str(x.Name)
	e.time(x.Time)
	e.str(x.Path)
	return e.object(x.Properties)
}

func (e *enc) user(u *User) error {
	e.str(u.Key)
	if err := e.object(u.Traits); err != nil {
		return err
	}
	e.str(u.Zone)
	e.time(u.FirstSeen)
	e.time(u.LastEvent)
	encMap(e, u.LastSeen, e.time)
	encMap(e, u.Counts, e.varint)
	encMap(e, u.Pages, func(p *Page) {
		e.varint(p.Views)
		e.varint(p.Revisits)
		e.time(p.First)
		e.time(p.Last)
		e.time(p.LastSession)
		e.f64(p.MaxScroll)
		e.f64(p.Dwell)
	})
	encMap(e, u.Hovers, e.varint)
	encMap(e, u.Videos, e.f64)
	e.f64(u.VideoSeconds)
	e.uvarint(uint64(len(u.Cart.Items)))
	for i := range u.Cart.Items {
		it := &u.Cart.Items[i]
		e.str(it.ProductID)
		e.str(it.Name)
		e.str(it.Category)
		e.f64(it.Price)
		e.f64(it.Quantity)
		e.time(it.Added)
	}
	e.f64(u.Cart.Value)
	e.time(u.Cart.FirstAdded)
	e.time(u.Cart.LastChanged)
	e.time(u.Session.Start)
	e.time(u.Session.Last)
	e.varint(u.Session.Events)
	encMap(e, u.Session.Scroll, e.f64)
	encMap(e, u.Session.Video, e.f64)
	e.f64(u.Score)
	e.time(u.ScoreAt)
	encMap(e, u.Aggs, func(a *Agg) {
		e.uvarint(uint64(len(a.Entries)))
		for _, x := range a.Entries {
			e.time(x.T)
			e.str(x.K)
			e.f64(x.V)
		}
	})
	var err error
	encMap(e, u.Triggers, func(t *Trigger) {
		e.varint(t.Runs)
		e.varint(t.Sent)
		e.time(t.LastEnd)
		e.bool(t.Entered)
		e.time(t.CooldownNoted)
		e.bool(t.Run != nil)
		if r := t.Run; r != nil {
			e.varint(r.Seq)
			e.time(r.Started)
			if eerr := e.entry(&r.Entry); eerr != nil && err == nil {
				err = eerr
			}
			e.str(r.Phase)
			e.int(r.Step)
			e.time(r.Due)
			e.bool(r.Deferred)
			e.str(r.Variant)
			e.int(r.Sent)
			e.time(r.Last)
		}
	})
	if err != nil {
		return err
	}
	e.time(u.Unsubscribed)
	e.time(u.Bounced)
	e.uvarint(uint64(len(u.SeenIDs)))
	for _, id := range u.SeenIDs {
		e.b = binary.LittleEndian.AppendUint64(e.b, id)
	}
	e.uvarint(uint64(len(u.Sends)))
	for _, s := range u.Sends {
		e.time(s.At)
		e.str(s.Trigger)
		e.int(s.Step)
	}
	// Fields added after the layout was fixed follow as tagged
	// extensions, each written only when set, so a state without them
	// has the bytes it had before they existed (and stored states decode
	// as they are).
	if u.Device != "" {
		e.b = append(e.b, extDevice)
		e.str(u.Device)
	}
	return nil
}

// Tags of the extensions that follow the fixed layout, in increasing
// order; a reader refuses a tag it does not know.
const (
	extDevice byte = iota + 1
)

// dec reads what enc wrote; any inconsistency sets err and yields zero
// values, so a corrupt value is refused, never a panic.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *dec) uvarint() uint64 {
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *dec) varint() int64 {
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *dec) int() int { return int(d.varint()) }

// count reads a length and checks that at least min bytes per element
// remain, so that a corrupt length cannot ask for a huge allocation.
func (d *dec) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/max(min, 1)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *dec) str() string {
	n := d.count(1)
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *dec) f64() float64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return f
}

func (d *dec) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *dec) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

func (d *dec) time() time.Time {
	if !d.bool() {
		return time.Time{}
	}
	return time.Unix(0, d.varint()).UTC()
}

func decMap[V any](d *dec, min int, val func() V) map[string]V {
	n := d.count(min)
	if n == 0 {
		return nil
	}
	m := make(map[string]V, n)
	for i := 0; i < n && d.err == nil; i++ {
		k := d.str()
		m[k] = val()
	}
	return m
}

// decSlabMap decodes a map of pointers whose values come from one slab,
// not one allocation each.
func decSlabMap[T any](d *dec, min int, val func(*T)) map[string]*T {
	n := d.count(min)
	if n == 0 {
		return nil
	}
	slab := make([]T, n)
	m := make(map[string]*T, n)
	for i := 0; i < n && d.err == nil; i++ {
		k := d.str()
		val(&slab[i])
		m[k] = &slab[i]
	}
	return m
}

func (d *dec) any(depth int) any {
	if depth > 64 {
		d.fail()
		return nil
	}
	switch d.byte() {
	case tagNull:
		return nil
	case tagFalse:
		return false
	case tagTrue:
		return true
	case tagNumber:
		return d.f64()
	case tagString:
		return d.str()
	case tagList:
		n := d.count(1)
		out := make([]any, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			out = append(out, d.any(depth+1))
		}
		return out
	case tagObject:
		m := d.object(depth + 1)
		if m == nil {
			m = map[string]any{}
		}
		return m
	}
	d.fail()
	return nil
}

func (d *dec) object(depth int) map[string]any {
	return decMap(d, 2, func() any { return d.any(depth) })
}

func (d *dec) entry() Entry {
	return Entry{ID: d.str(), Name: d.str(), Time: d.time(), Path: d.str(), Properties: d.object(0)}
}

func (d *dec) user() *User {
	u := &User{}
	u.Key = d.str()
	u.Traits = d.object(0)
	u.Zone = d.str()
	u.FirstSeen = d.time()
	u.LastEvent = d.time()
	u.LastSeen = decMap(d, 2, d.time)
	u.Counts = decMap(d, 2, d.varint)
	u.Pages = decSlabMap(d, 20, func(p *Page) {
		*p = Page{Views: d.varint(), Revisits: d.varint(), First: d.time(), Last: d.time(),
			LastSession: d.time(), MaxScroll: d.f64(), Dwell: d.f64()}
	})
	u.Hovers = decMap(d, 2, d.varint)
	u.Videos = decMap(d, 9, d.f64)
	u.VideoSeconds = d.f64()
	if n := d.count(20); n > 0 {
		u.Cart.Items = make([]CartItem, n)
		for i := range u.Cart.Items {
			u.Cart.Items[i] = CartItem{ProductID: d.str(), Name: d.str(), Category: d.str(),
				Price: d.f64(), Quantity: d.f64(), Added: d.time()}
		}
	}
	u.Cart.Value = d.f64()
	u.Cart.FirstAdded = d.time()
	u.Cart.LastChanged = d.time()
	u.Session.Start = d.time()
	u.Session.Last = d.time()
	u.Session.Events = d.varint()
	u.Session.Scroll = decMap(d, 9, d.f64)
	u.Session.Video = decMap(d, 9, d.f64)
	u.Score = d.f64()
	u.ScoreAt = d.time()
	u.Aggs = decSlabMap(d, 2, func(a *Agg) {
		if n := d.count(10); n > 0 {
			a.Entries = make([]AggEntry, n, n+1) // room for the next entry
			for i := range a.Entries {
				a.Entries[i] = AggEntry{T: d.time(), K: d.str(), V: d.f64()}
			}
		}
	})
	u.Triggers = decSlabMap(d, 6, func(t *Trigger) {
		*t = Trigger{Runs: d.varint(), Sent: d.varint(), LastEnd: d.time(), Entered: d.bool(), CooldownNoted: d.time()}
		if d.bool() {
			t.Run = &Run{Seq: d.varint(), Started: d.time(), Entry: d.entry(), Phase: d.str(), Step: d.int(),
				Due: d.time(), Deferred: d.bool(), Variant: d.str(), Sent: d.int(), Last: d.time()}
		}
	})
	u.Unsubscribed = d.time()
	u.Bounced = d.time()
	if n := d.count(8); n > 0 {
		// Room for the next id: the engine appends one, then trims to
		// the limit, so a state at the limit never grows again.
		u.SeenIDs = make([]uint64, n, n+1)
		for i := range u.SeenIDs {
			if len(d.b) < 8 {
				d.fail()
				break
			}
			u.SeenIDs[i] = binary.LittleEndian.Uint64(d.b)
			d.b = d.b[8:]
		}
	}
	if n := d.count(3); n > 0 {
		u.Sends = make([]Send, n, n+1)
		for i := range u.Sends {
			u.Sends[i] = Send{At: d.time(), Trigger: d.str(), Step: d.int()}
		}
	}
	last := byte(0)
	for d.err == nil && len(d.b) != 0 {
		tag := d.b[0]
		d.b = d.b[1:]
		if tag <= last {
			d.fail()
			break
		}
		last = tag
		switch tag {
		case extDevice:
			u.Device = d.str()
			if u.Device == "" {
				d.fail()
			}
		default:
			d.fail()
		}
	}
	return u
}

// encScratch is the buffer and key stack one Marshal works in; the Codec
// pools them.
type encScratch struct {
	b    []byte
	keys []string
}

// maxPooled bounds the buffers kept for reuse, so that one huge state does
// not pin its buffer for good.
const maxPooled = 64 << 10

// marshalBinary returns the binary encoding of u, built in a pooled
// buffer and copied out at its exact size: one allocation per state.
func (c *Codec) marshalBinary(u *User) ([]byte, error) {
	sc, _ := c.bufs.Get().(*encScratch)
	if sc == nil {
		sc = &encScratch{b: make([]byte, 0, 1024)}
	}
	e := enc{b: append(sc.b[:0], versionBinary), keys: sc.keys[:0]}
	err := e.user(u)
	var out []byte
	if err == nil {
		out = make([]byte, len(e.b))
		copy(out, e.b)
	}
	if cap(e.b) <= maxPooled {
		sc.b, sc.keys = e.b[:0], e.keys[:0]
		c.bufs.Put(sc)
	}
	return out, err
}

func unmarshalBinary(b []byte) (*User, error) {
	d := dec{b: b}
	u := d.user()
	if d.err != nil {
		return nil, fmt.Errorf("decode user state: %w", d.err)
	}
	return u, nil
}
