// Package cli is the microtrigger command line: one kingpin application,
// one file per command (run, broker, processor, sink, rules, backtest,
// erase). It turns flags and MICROTRIGGER_* environment variables into the
// Config structs of the processor and sink packages and runs them; it holds
// no logic of its own beyond that wiring.
//
// Every command exits with one of the codes ExitOK, ExitFailures,
// ExitUsage and ExitInterrupted, whatever failed: a usage problem (a flag
// missing or invalid, a path a flag names that is not there) is found before
// anything starts, and a command stopped by SIGINT or SIGTERM before it was
// done does not exit 0.
//
// Only main imports this package; it is the one place that imports both the
// processor and the sink side.
package cli
