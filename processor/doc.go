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
// # Membership, recovery and readiness
//
// With Config.InstanceID each instance is a static member of the group: an
// instance killed and restarted with its id within Config.SessionTimeout
// (20s) replaces its old self at once and gets its partitions back, and
// its transactional id fences the transaction it left open. One that does
// not come back has its partitions moved after the session timeout.
// internal/groupwatch logs the group's state changes (joining, long
// rebalances, assignments, revocations, lost partitions, failed or slow
// group requests, the cluster unreachable). Readiness ([Processor.Readiness])
// is: joined (an assignment arrived, even an empty one), every assigned
// partition restored, and the cluster answering. A broker outage stops
// progress, not the processor: failed batches abort and are redone, and a
// restore that fails is retried with a backoff. Liveness
// ([Processor.Liveness]) is the main loop coming round within
// Config.StuckAfter, or the cluster not answering (waiting on Kafka is not
// being stuck). Metrics (metrics.go) count each event under one outcome,
// the consumer lag, transactions and the partition stores' Pebble metrics;
// with Config.Tracer, batches and send-commands are traced, and a command's
// record carries its span's traceparent.
//
// What happens to an event is decided by processor/engine, in the order
// processor/eventtime gives, through processor/task; this package only moves
// records. Its output goes to the send-commands topic, read by the sink.
package processor
