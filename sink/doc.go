// Package sink is microtrigger's delivery worker: it consumes send-commands
// (read_committed, in a consumer group), skips every command id its ledger
// has already settled, renders each command, hands the messages to a
// transport (SendGrid, or the console and file transports used in
// development) and dead-letters what cannot be delivered into
// commands-dlq with a reason.
//
// # Where things go
//
//	send-commands ─▶ Sink.Run ─▶ sink/ledger (InFlight) ─▶ Transport ─▶ SendGrid v3 / console / .eml files
//	                      │                                  │
//	                      │   sink/ledger (Sent, or Unresolved when no answer came)
//	                      │                                  ▲
//	sink-outcomes ────────┤   (SendGrid's events, from sink/webhook: Unresolved → Sent)
//	                      └─▶ commands-dlq (bad_command, expired, unknown_template, rejected,
//	                                        retries_exhausted, outcome_unknown)
//
// # Expiry
//
// Every command has a window in which its email is still worth sending:
// from its send_at to its expires_at, which the processor writes (send_at
// plus the trigger's expire_after, or 15 minutes, 3 hours or 24 hours by
// intent); a command written before expires_at existed gets its intent's
// window. The sink holds expires_at to its own wall clock (Config.Now) when
// it reads the command: past it, the command is dead-lettered as expired,
// marked Expired in the ledger so that no sink sends it later, and counted
// by trigger in microtrigger_sink_expired_total. That is where the wall
// clock belongs: the processor's output is a function of the events, and
// replaying a backlog yields commands whose send_at is long past. A command
// whose send_at is still ahead is sent when it is read; the processor emits
// commands when they are due, not before.
//
// SendGrid's event webhook is served by sink/webhook, which publishes back
// into events and into sink-outcomes; it runs beside the Sink, not inside
// it, on any instance.
//
// # Delivery guarantee
//
// A command id is sent at most once, ever (within the ledger's retention),
// across restarts, crashes and rebalances; and every command is either
// delivered or dead-lettered with a reason, none silently lost. Before each
// request the ledger durably marks its commands InFlight; after the answer
// it marks them Sent (or clears the mark, when SendGrid accepted nothing and
// the request is retried or dead-lettered).
//
// SendGrid has no idempotency key, so a request whose answer never came (a
// connection cut or a timeout after the request was written, or a crash of
// the sink mid-request, found as an InFlight entry when the command is
// read again) is ambiguous. Its commands are never sent again: the ledger
// records them Unresolved, with the command's record and a deadline
// (Config.UnknownDeadline after the request, recorded once, so a restart
// or a move of the partition keeps it), and the offsets move on. SendGrid
// posts events only for messages it accepted, each carrying the command_id
// custom argument, so any event about the command in sink-outcomes
// (processed, deferred, delivered, bounce, dropped, open, click…) settles
// it as Sent. At the deadline, with no such event, it is dead-lettered as
// outcome_unknown: the sink does not resend, since an event can be late
// or never configured, and a resend would then be a second email.
//
// sink-outcomes is co-partitioned with send-commands (keyed by the user
// key), so the sink owning partition N reads partition N, whichever
// instance received the webhook request: from a little before the oldest
// command waiting in the partition when it is assigned, so evidence that
// came while no one owned it is read too. Deadlines of a partition are
// decided only once that reading has caught up. All of it runs on the
// delivery loop between polls, which wakes at least every
// Config.CheckEvery.
//
// # Outages and readiness
//
// Only SendGrid refusing the credentials, or Kafka refusing its
// authorization, stops Run. Anything else a poll meets (the broker away, a
// group session lost, the changelog not writable, a ledger restore that
// fails) is retried: the client rejoins by itself, and a poll that failed
// is read again from its first record after a backoff (500ms doubling to
// 30s), which the ledger makes harmless; what SendGrid accepted is recorded
// once the broker is back. [Sink.Readiness] is: joined (an assignment
// arrived, even an empty one), the ledger of every assigned partition
// restored, the cluster answering, and the poll loop not retrying.
// [Sink.Liveness] is the delivery loop coming round (or taking a step: a
// SendGrid attempt, a ledger write, a restore's fetch) within
// Config.StuckAfter, or the cluster not answering. A command record's
// traceparent header goes with its message to the SendGrid request
// (render.Message.TraceParent), which sendgrid traces.
//
// The package does not decide whom to email (the processor does) and does
// not wrap franz-go: Config.Kafka passes kgo options straight through.
package sink
