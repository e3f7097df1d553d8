// Package schema holds microtrigger's wire contracts: the Segment-style
// event envelope read from the events topic, the send-command written to the
// send-commands topic, the suppression record, and the dead-letter record.
//
// [DecodeEvent] is the one validation every decoder uses: the live
// processor, the backtest and rules-test drivers, and the sink's webhook all
// call it, so an event accepted by one is accepted by all. event.schema.json
// publishes the same rules for producers.
//
// It refuses what readers could take differently (duplicate keys, keys
// equal under case folding or differing only in case from a field it
// reads, lone surrogates, numbers beyond float64) and what would poison
// state and templates (control characters in ids, names and keyed strings,
// numbers over [MaxNumber] in properties and traits, catalogued amounts
// over [MaxAmount]). Its [ValidationError] names schema fields, byte
// offsets and kinds, never a value or another key of the record, so it is
// safe in logs, dead-letter headers and reports. It reads a record in one
// pass over its bytes, without reflection (parse.go); the decoder it
// replaced is kept in reference_test.go, and FuzzDecodeMatchesReference
// holds the two to the same events and refusals.
//
// [CheckTimezone] accepts the zones of the database embedded in the binary
// (schema/zoneinfo, which also loads them for quiet hours and caps), never
// the host's, so every host accepts the same zones.
//
// The package imports nothing of microtrigger's but its subpackage zoneinfo,
// and does no I/O. Its types flow into processor/... (events in, commands
// out) and sink/... (commands in, webhook events out); it is the only
// package both sides share.
package schema
