// Package webhook serves SendGrid's signed event webhook and publishes the
// events back into the events topic as Segment track calls, keyed by the
// user, so that the processor's policy sees bounces and unsubscribes (and
// rules can see opens and clicks).
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
// processed, deferred and other types are counted and dropped. The user key
// is the user_id custom argument the sink puts on every message; events
// without one are counted and dropped. Each published event's messageId is
// "sg:" + sg_event_id, so SendGrid's redeliveries are recognised here (a
// bounded in-memory set) and, across instances and restarts, by the
// processor's own messageId dedupe. If Kafka refuses the records the
// request gets 503 and SendGrid delivers it again.
//
// It does not send mail and keeps no state beyond the dedupe set.
package webhook
