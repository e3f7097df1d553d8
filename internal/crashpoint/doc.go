// Package crashpoint names the moments at which a fault-injection build of
// microtrigger can be made to die with SIGKILL, for the fault harness
// (internal/soak): before a batch's records are produced, after they are
// produced and before the transaction commits, after it commits and before
// the local store is written, in the middle of a restore, and the sink's
// moments around a SendGrid request.
//
// Only a binary built with the "faults" build tag reads the
// MICROTRIGGER_CRASH_AT environment variable; in every other build Armed
// is a constant false that the compiler removes with the code it guards,
// so a production binary cannot be crashed this way and pays nothing.
//
// MICROTRIGGER_CRASH_AT is a point's name, optionally followed by ":N" to
// die at its Nth hit rather than its first (processor.before-produce:3).
package crashpoint

// The named points.
const (
	// BeforeProduce: a transaction has begun, nothing of the batch is
	// produced. Only batches that emit send-commands count.
	BeforeProduce = "processor.before-produce"
	// AfterProduce: every record of the batch is produced and flushed to
	// the broker, the transaction is not committed. Only batches that
	// emit send-commands count.
	AfterProduce = "processor.after-produce"
	// AfterCommit: the transaction is committed, the snapshot it carried
	// is not yet applied to Pebble.
	AfterCommit = "processor.after-commit"
	// MidRestore: a partition's restore from the changelog has read
	// records and not yet written its checkpoint.
	MidRestore = "processor.mid-restore"
	// SinkAfterAttempt: the sink has recorded a request as in flight and
	// not yet sent it.
	SinkAfterAttempt = "sink.after-attempt"
	// SinkBeforeSettle: SendGrid accepted a request, the sink has not yet
	// recorded it as sent.
	SinkBeforeSettle = "sink.before-settle"
)

// Env is the environment variable a faults build reads.
const Env = "MICROTRIGGER_CRASH_AT"
