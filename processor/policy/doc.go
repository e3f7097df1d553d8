// Package policy holds the global sending policy and its pure decisions:
// consent, unsubscribes and bounces, frequency caps counted in the user's
// time zone, quiet hours (a deferral, never a drop), cooldown, holdout and
// variant assignment, and the ranking used when caps bind.
//
// Each function answers one question from a user's state and a logical time,
// and returns a suppression reason rather than acting. It reads no clock and
// does no I/O. The engine (processor/engine) asks these questions when a step
// comes due and turns the answers into send-commands or suppression records.
package policy
