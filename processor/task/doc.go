// Package task is one partition's worth of processing, shared by every
// driver: it puts offered events in event-time order (processor/eventtime),
// fires due timers between them, runs each input through the engine on the
// user's state, and collects what came out: Take hands a batch's commands
// and suppressions to the driver. Changed users stay decoded in memory
// until the driver asks for a Snapshot: one pending Write of the changed
// users, their due-index entries, the reorder buffer and the clock, whose
// key/value pairs are also the changelog records, which the driver applies
// to the store once it is durable elsewhere (or drops). Flush does both at
// once for drivers whose store is the only copy.
//
// A user's next due time lives in the user's state (state.User.NextDue);
// the due index (processor/eventtime) and the store's index entry are
// derived from it whenever it changes.
//
// A Task reads no clock: drivers move its clock (the live processor from the
// wall clock, replay from event time, rule tests from their eval times), so
// the same inputs and clock moves give the same outputs in all of them. It
// does no Kafka I/O; the live driver produces its Output and commits.
package task
