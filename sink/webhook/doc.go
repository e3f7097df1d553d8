// Package webhook serves SendGrid's signed event webhook and publishes the
// events back into the events topic as Segment track calls, keyed by the
// user, so that the processor's policy sees bounces and unsubscribes (and
// rules can see opens and clicks); and into sink-outcomes, where the sink
// learns from them that SendGrid accepted a message whose answer it never
// got.
//
// Every request is checked before anything is read into events: the ECDSA
// P-256 signature (header X-Twilio-Email-Event-Webhook-Signature, base64
// DER) over the timestamp (X-Twilio-Email-Event-Webhook-Timestamp) followed
// by the raw body, verified with crypto/ecdsa on the exact bytes received;
// a timestamp older or newer than MaxAge; a body bounded by MaxBody (413).
// Unsigned, stale or badly signed requests get 401, bodies that are not an
// array of events 400. Answers and log lines are fixed sentences with at
// most a byte offset or an event's index: the body holds addresses and
// user ids, and none of it is repeated.
//
// SendGrid event types map to Segment names:
//
//	delivered                                   → Email Delivered
//	open                                        → Email Opened
//	click                                       → Email Link Clicked (property url)
//	bounce, dropped                             → Email Bounced (property reason)
//	unsubscribe, group_unsubscribe, spamreport  → Unsubscribed
//
// processed, deferred and other types go into sink-outcomes only. The user
// key is the user_id custom argument the sink puts on every message;
// events without one are counted and dropped.
//
// # Where things go
//
//	SendGrid ─▶ Handler ─▶ events         (Segment track calls, messageId "sg:" + sg_event_id)
//	                  └──▶ sink-outcomes  (an [Outcome] per event: id, type, command_id)
//
// sink-outcomes is keyed by the user key and co-partitioned with
// send-commands, so an outcome lands in the partition number of its
// command, which the sink owning that partition reads (see package sink).
//
// # Redeliveries
//
// SendGrid posts an event again when it got no 2xx (for up to 24 hours)
// and sometimes twice anyway. Each event is published once: its id is
// looked up in a durable store (Pebble in Dir) of the ids published within
// DedupeWindow. The store is a cache of sink-outcomes: [Handler.Run] reads
// every partition of it, from where the store stopped (or from
// DedupeWindow ago, for an empty Dir), and keeps reading, so an event
// published by any instance is known to every instance, also after a
// restart on an empty volume. Until Run has caught up the handler answers
// 503, which SendGrid retries. The outcome is written after the events
// record is acknowledged, so a failure in between makes a redelivery
// publish the event again rather than never; two instances receiving the
// same event within the moment it takes one to read the other's outcome
// can both publish it. Either way the processor's messageId dedupe drops
// the copy. If Kafka refuses the records the request gets 503 and SendGrid
// delivers it again.
//
// It does not send mail and decides nothing about commands: the sink does.
package webhook
