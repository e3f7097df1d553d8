// Package lint holds no code, only the test that checks the structure rules
// the README states, over the packages `go list` reports and the sources of
// the pure core:
//
//   - processor/... and sink/... never import each other (tests included);
//     they meet in schema, which imports nothing else of ours;
//   - only internal/cli imports both sides, and only main imports
//     internal/cli (tests aside);
//   - the pure core (processor/engine, rules, policy, state, eventtime)
//     imports no I/O package (os, net, io/fs, syscall, …; rules takes the
//     pack as an fs.FS its caller opens), depends on neither the Kafka
//     client nor Pebble, and reads no clock (no time.Now, time.Since, timers
//     or sleeps in its sources);
//   - production code imports no test helper package (kafkatest,
//     schematest, sendgridtest, …).
//
// A rule broken fails `go test ./internal/lint` with the import or the call
// that breaks it.
package lint
