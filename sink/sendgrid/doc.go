// Package sendgrid delivers rendered messages through SendGrid's v3 mail
// send API (POST /v3/mail/send), built on github.com/sendgrid/sendgrid-go's
// request and mail types with its own HTTP client, retry and rate limit.
//
// [Client.Send] groups messages that share a template, sender, reply-to,
// categories and unsubscribe group into requests of up to 1000
// personalizations, sends the requests concurrently under a token-bucket
// rate limit, and classifies every answer:
//
//   - 2xx: accepted.
//   - 429: retried after the X-RateLimit-Reset time (or Retry-After), plus
//     jitter; the whole client pauses until then.
//   - 5xx and connection failures before the request was written: retried
//     with exponential backoff and jitter, within a budget of attempts and
//     time; past it the messages are exhausted.
//   - 400 and 413 for a request of several messages: split in halves and
//     each half sent again, so one bad address refuses only its own message.
//   - 401 and 403: the key or sender identity is wrong; Send stops with
//     [ErrUnauthorized] and leaves the messages undelivered, as every other
//     message would fail the same way.
//   - Other 4xx: rejected, never retried.
//   - No answer after the request was written (connection cut, timeout):
//     unknown. SendGrid has no idempotency key, so the message may have been
//     accepted; Send never sends it again, and the sink settles it from
//     SendGrid's events (see package sink).
//
// A [Journal] is told before every attempt and after every answer, which is
// how the sink's ledger knows at each moment which messages may be on their
// way to SendGrid.
//
// The API key is an [APIKey]: it prints, logs and marshals as "[redacted]",
// and appears only in the Authorization header. Addresses in SendGrid's
// error messages are masked.
//
// The package does not read Kafka, decide what to send or dead-letter
// anything: the sink does, with the [Result] of each message.
package sendgrid
