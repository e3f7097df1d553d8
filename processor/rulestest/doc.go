// Package rulestest is the rule unit-test driver, modelled on promtool's
// `test rules`: a YAML file names a rule pack, users with their traits,
// input events with times, and checkpoints with the send-commands and
// suppressions expected by then. Each test runs the production decoder
// (schema.DecodeEvent), the same event-time ordering, engine and store (on
// an in-memory file system) as the live processor, with its own clock.
//
// `microtrigger rules test` formats its results; scenarios_test.go runs the
// example pack's tests under `go test`.
package rulestest
