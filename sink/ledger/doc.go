// Package ledger is the sink's durable record of what it has sent, by
// command id: the state that makes delivery exactly-once across restarts
// and rebalances.
//
// Each partition of send-commands has its own ledger partition: a Pebble
// store on local disk plus the matching partition of a compacted changelog
// topic (sink-changelog, co-partitioned with send-commands). Every change is
// written to the changelog first (acknowledged by the brokers) and applied to
// Pebble after, together with the changelog offset it reflects, so Pebble is
// a cache of the changelog: on assignment a partition catches up from that
// offset, or from the start on a new node or an empty state directory.
//
// An entry's state is one of:
//
//   - InFlight: written before a request carrying the message is made. A
//     command found InFlight by a later run was in a request whose answer
//     was never recorded: the provider may have accepted it.
//   - Sent: the provider accepted it. Never sent again.
//   - Unresolved: a request carrying it got no answer. Never sent again;
//     the entry keeps the command's record, why the outcome is unknown and
//     until when the sink waits for SendGrid's events before
//     dead-lettering it, so that a restart or a move of the partition
//     keeps the same deadline.
//   - Unknown: its outcome could not be known and it was dead-lettered.
//     Never sent again.
//   - Expired: it was read after its expires_at and dead-lettered unsent.
//     Never sent again, so that a sink whose clock runs behind another's
//     cannot send what that one refused.
//
// No entry means not sent. Entries expire after a retention period
// (tombstones in the changelog) so the ledger stays bounded; InFlight and
// Unresolved ones are kept until they are settled. Those two are also
// indexed in the store ([Ledger.Pending]), so the sink finds them without
// a scan.
//
// The package decides nothing: the sink's delivery loop reads and writes
// it. It does not send mail or consume send-commands.
package ledger
