// Package schema holds microtrigger's wire contracts: the Segment-style
// event envelope read from the events topic, the send-command written to the
// send-commands topic, the suppression record, and the dead-letter record.
//
// [DecodeEvent] is the one validation every decoder uses: the live
// processor, the backtest and rules-test drivers, and the sink's webhook all
// call it, so an event accepted by one is accepted by all. event.schema.json
// publishes the same rules for producers.
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
