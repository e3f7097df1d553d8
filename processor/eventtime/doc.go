// Package eventtime orders a partition's inputs in event time, the same way
// for every driver. A Clock keeps C (the highest event time seen; live, also
// the wall clock once the partition is caught up) and the watermark W = C − grace. Events wait in a
// Buffer until W passes them and come out in (time, sequence) order; Timers
// is the due index of users' timers, ordered (due, user) entries derived
// from the users' states. Next interleaves the two: whatever is
// earliest and at or before W goes first, and a timer due at the same
// instant as an event goes before it.
//
// It only orders: what an input does is the engine's business, and keeping
// the buffer and timers durable is the store's.
package eventtime
