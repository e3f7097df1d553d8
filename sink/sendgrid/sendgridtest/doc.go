// Package sendgridtest is a fake SendGrid v3 mail send API on a real HTTP
// server on loopback (net/http/httptest), for tests and benchmarks.
//
// It speaks the API as SendGrid documents it: bearer-key authentication
// (401 with a JSON error body), request bodies validated against the
// published request schema (mail_send.request.schema.json, from SendGrid's
// OpenAPI description, MIT licence) with the dynamic-template exception
// (no subject or content needed with a d- template id), string-only
// custom_args and the 1000-personalization limit, 400s with SendGrid's
// {"errors":[{"message","field"}]} body, 202 on success, and
// X-RateLimit-Limit/Remaining/Reset headers.
//
// It can be scripted to fail: 429 bursts with a reset time, 5xx, requests
// that hang until the client gives up, and connections cut after the
// request was read, each either before or after the server accepted it.
// It counts the personalizations it accepted by their command_id custom
// argument, so a test can assert that every command was delivered exactly
// once.
//
// It also plays SendGrid's Event Webhook: [Server.Events] builds the
// events SendGrid would post for the messages it accepted (processed,
// delivered, open… with each message's custom arguments and its own
// sg_event_id), including those of a request it accepted and then cut, and
// a [Webhook] signs them with its own ECDSA P-256 key as SendGrid does and
// posts them to the receiving end, again when asked (a redelivery).
//
// Production code never imports it.
package sendgridtest
