package schema_test

import (
	"bytes"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/internal/clickstream"
	"github.com/microtrigger/microtrigger/schema"
)

// benchStream is the synthetic clickstream the kind benchmarks pick their
// records from.
var benchStream = sync.OnceValue(func() []clickstream.Event {
	return clickstream.Generate(clickstream.Config{Users: 1000, EventsPerUser: 10, Seed: 1})
})

// benchKinds returns one record of each kind of the stream: a page view, a
// product event with properties, an identify with traits, and a product
// event refused for a price of the wrong type (a refusal found after the
// whole record is read).
func benchKinds(tb testing.TB) []struct {
	name string
	raw  []byte
} {
	var page, product, identify []byte
	for _, e := range benchStream() {
		v := e.Value
		switch {
		case page == nil && bytes.Contains(v, []byte(`"type":"page"`)):
			page = v
		case product == nil && bytes.Contains(v, []byte(`"event":"Product Added"`)) && bytes.Contains(v, []byte(`"category"`)):
			product = v
		case identify == nil && bytes.Contains(v, []byte(`"type":"identify"`)):
			identify = v
		}
	}
	if page == nil || product == nil || identify == nil {
		tb.Fatal("the stream lacks a page view, a product event or an identify")
	}
	i := bytes.Index(product, []byte(`"price":`)) + len(`"price":`)
	j := i + bytes.IndexAny(product[i:], ",}")
	rejected := []byte(string(product[:i]) + `"` + string(product[i:j]) + `"` + string(product[j:]))
	if _, err := schema.DecodeEvent(rejected); err == nil || !strings.Contains(err.Error(), "bad_property") {
		tb.Fatalf("the refused record is not refused for its price: %v", err)
	}
	return []struct {
		name string
		raw  []byte
	}{{"page", page}, {"product", product}, {"identify", identify}, {"rejected", rejected}}
}

// cpuTime is the CPU the process has used, garbage collection included.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchDecode decodes raw b.N times. Besides ns/op, which other work on a
// shared machine inflates, it reports cpu-ns/op: the process's CPU per
// decode, the collection of its garbage included.
func benchDecode(b *testing.B, raw []byte, decode func([]byte) (schema.Event, error)) {
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	cpu := cpuTime()
	for b.Loop() {
		_, _ = decode(raw)
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkDecodeKinds decodes one record of each kind the clickstream
// holds.
func BenchmarkDecodeKinds(b *testing.B) {
	for _, k := range benchKinds(b) {
		b.Run(k.name, func(b *testing.B) { benchDecode(b, k.raw, schema.DecodeEvent) })
	}
}

// BenchmarkDecodeStream decodes the whole clickstream, 9,523 records of 172
// bytes on average; ns/op is per record.
func BenchmarkDecodeStream(b *testing.B) {
	evs := benchStream()
	b.ReportAllocs()
	cpu := cpuTime()
	n := 0
	for b.Loop() {
		if _, err := schema.DecodeEvent(evs[n%len(evs)].Value); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkReferenceDecodeKinds is BenchmarkDecodeKinds for the decoder
// DecodeEvent replaced, for ratios measured in one run.
func BenchmarkReferenceDecodeKinds(b *testing.B) {
	kinds := benchKinds(b)
	kinds = append(kinds, struct {
		name string
		raw  []byte
	}{"event", benchEvent})
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) { benchDecode(b, k.raw, schema.ReferenceDecodeEvent) })
	}
}
