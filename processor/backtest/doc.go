// Package backtest is the replay driver of the engine: it plays history —
// a JSONL file of events or a time range of a Kafka topic — through a rule
// pack, in event time, and reports what would have been sent, what was
// suppressed and why, and how many of the users emailed converted compared
// with the holdout group. `microtrigger backtest` is its command line.
//
// # How it replays
//
// Every record goes through schema.DecodeEvent, the production validator;
// a record it refuses is counted and listed (line number, or partition and
// offset, with the reason), never fatal. Accepted events outside the range
// [Config.From, Config.To] (event time, both inclusive) are skipped. A
// topic is read from the offsets of From to the offsets of To, found by
// record timestamp, in every partition, with read_committed isolation and
// without a consumer group; the partitions are merged by event time (a
// k-way merge that keeps each partition's offset order).
//
// Events then meet the same processor/task, processor/engine and
// processor/store as the live processor, with the pack's policy. The clock
// C is the highest event time read and the watermark W = C − grace; an event
// older than W is applied at once and counted as late; a timer fires once W
// passes its due time. At the end of the input the watermark moves to To
// (without To, to the last event's time), so timers due at or before it
// fire. Users are split by a hash of their key over Config.Workers workers,
// each with its own task and store, and every worker moves its clock
// exactly as one task over the whole input would: each user sees the same
// order of events and timers, so the output does not depend on the number
// of workers. For in-order input it is byte for byte what the live
// processor emits.
//
// # What it does not do
//
// It sends nothing, produces nothing, commits no offset and joins no
// consumer group. It never reads the wall clock for decisions (only to time
// itself and show progress). It does not change the pack: analysts edit a
// copy and compare (Config.Compare).
//
// # Where its output goes
//
// Into Config.OutDir: commands.jsonl (the send-commands that would have
// been produced, exactly the contract's records, sorted by send_at, so
// they do contain user ids and email addresses), suppressions.jsonl (every
// suppression with its reason, including quiet-hours deferrals with their
// new time), report.json and report.html (aggregates only, no user id or
// email: see processor/backtest/report), and compare/ with the compared
// pack's records. The summary table of report.WriteSummary is what the
// command prints on stdout.
package backtest
