// Package engine is microtrigger's deterministic core. Given one user's
// state, one input (an event, or the due time of that user's timers) and the
// logical time now, it updates the state and returns the send-commands, the
// suppressions (with reasons) and the deferrals that follow; the user's
// pending timers are part of the state it returns.
//
// It does no I/O, reads no clock and iterates no map where order could leak
// into what it returns. Time zones for quiet hours and caps come through
// [Options] from the database embedded in the binary (schema/zoneinfo),
// never from the host. So the same inputs give the same bytes in every
// driver: the live processor (package processor), replay and backtest
// (processor/backtest) and rule unit tests (processor/rulestest). It does not
// order inputs in time (processor/eventtime does), persist state
// (processor/store does) or count metrics (drivers turn a Result into
// metrics).
package engine
