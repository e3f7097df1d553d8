// Package store keeps one partition's processor state in Pebble: user states
// (by user hash, never by the user's key), the due index of their timers
// (by user hash, the due time as value), events waiting in the reorder
// buffer, the partition's clock, the input offset its last snapshot
// reflects, the clock moves recorded since (ticks), and metadata such as
// the changelog offset the store reflects.
//
// Every change goes through a Batch, applied atomically together with that
// changelog offset; the same keys and values are what the live driver writes
// to the compacted changelog topic, so restoring a partition elsewhere is a
// plain copy of changelog records into an empty store ([DB.Restore]). The
// store knows nothing of Kafka, rules or time order: the engine decides what
// to write, the drivers decide when.
package store
