// Package schematest provides a corpus of hostile events for tests: one
// record per way [schema.DecodeEvent] refuses input (and a few it accepts),
// each carrying a sentinel string in every value and key it can hold, so
// that a test can push them through a real path (the processor and its
// dead letters, a backtest and its report) and scan every output for the
// sentinel with [Leaked]. Nothing outside tests imports it.
package schematest
