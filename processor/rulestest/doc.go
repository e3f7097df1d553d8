// Package rulestest is the rule unit-test driver, modelled on promtool's
// `test rules`: a YAML file names a rule pack, users with their traits,
// input events with times, and checkpoints with the send-commands and
// suppressions expected by then. Each test runs the production decoder
// (schema.DecodeEvent), the same event-time ordering, engine and store (on
// an in-memory file system) as the live processor, with its own clock.
//
// A file that does not load, or whose rule pack does not load, is a
// [LoadError] with every problem at its file:line:col, not a failed test;
// a failed expectation names its test and checkpoint by file:line:col
// ([CaseResult.Format]). `microtrigger rules test` formats the results and
// counts the two apart; scenarios_test.go runs the example pack's tests
// under `go test`.
package rulestest
