package schema_test

import (
	"testing"

	"github.com/microtrigger/microtrigger/schema"
)

// A typical tracker event, ~400 bytes.
var benchEvent = []byte(`{"messageId":"ajs-next-1772442000123-4b1c","type":"track","event":"Product Viewed","userId":"user-000042","anonymousId":"a8f0c1d2-9e7b-4c55-8f1a-3b2c1d0e9f87","timestamp":"2026-03-02T09:00:00.123Z","properties":{"product_id":"p9","name":"Leica M6","price":4200,"category":"cameras","quantity":1},"context":{"page":{"path":"/products/p9","url":"https://shop.example/products/p9","title":"Leica M6"},"userAgent":"Mozilla/5.0 (X11; Linux x86_64)","timezone":"Europe/Berlin","locale":"de-DE"}}`)

// BenchmarkDecodeEvent is decode + validate of one event: the cost every
// record pays before the engine sees it.
func BenchmarkDecodeEvent(b *testing.B) {
	if _, err := schema.DecodeEvent(benchEvent); err != nil {
		b.Fatal(err)
	}
	benchDecode(b, benchEvent, schema.DecodeEvent)
}
