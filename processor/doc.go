// Package processor is the live driver of the engine: a Kafka consumer group
// on the events topic whose members each own some partitions, keep those
// partitions' user state in Pebble (one store per partition, made durable and
// movable by a compacted changelog topic), and turn events and due timers into
// send-commands.
//
// Per batch, in one Kafka transaction (kgo's GroupTransactSession), it
// produces the send-commands, the dead letters and the changelog records and
// commits the input offsets; only once the transaction has committed does it
// apply the same changes to Pebble, with the changelog offset they reflect.
// An aborted transaction discards them. On assignment a partition's store
// catches up from the changelog before it processes input, so a partition can
// move to any instance and a crash loses or doubles nothing.
//
// What happens to an event is decided by processor/engine, in the order
// processor/eventtime gives, through processor/task; this package only moves
// records. Its output goes to the send-commands topic, read by the sink.
package processor
