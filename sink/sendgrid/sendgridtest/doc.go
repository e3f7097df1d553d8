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
// Production code never imports it.
package sendgridtest
