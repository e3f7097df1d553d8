// Package state is the per-user behavioral state of the processor: identify
// traits, page views and revisits, scroll depth and dwell time, hovers,
// video seconds, the cart, the session, last-seen times, declared windowed
// aggregates, the engagement score, each trigger's run (its step, variant
// and pending timer), recently seen messageIds and the send log.
//
// It defines the data, its bounds and eviction, and its versioned binary
// encoding; it does not decide anything (that is the engine and policy) and
// does not store anything (that is the store). The engine reads and updates
// a *User on every input; the store persists the encoding from [Marshal] in
// Pebble and in the changelog topic. Rules read it, read-only, as the CEL
// variable `user`, by the JSON names of its fields.
package state
