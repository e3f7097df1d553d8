// Package task is one partition's worth of processing, shared by every
// driver: it puts offered events in event-time order (processor/eventtime),
// fires due timers between them, runs each input through the engine on the
// user's state, and collects what came out. At the end of a batch, Flush
// turns the touched users, the due index and the reorder buffer into one
// store batch, whose key/value pairs are also the changelog records.
//
// A Task reads no clock: drivers move its clock (the live processor from the
// wall clock, replay from event time, rule tests from their eval times), so
// the same inputs and clock moves give the same outputs in all of them. It
// does no Kafka I/O; the live driver produces its Output and commits.
package task
