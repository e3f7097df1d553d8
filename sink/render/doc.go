// Package render turns a send-command into a message ready for a transport.
//
// Two renderers exist, one per kind of transport:
//
//   - [Dynamic] maps a template name to a SendGrid dynamic template id with a
//     [Mapping] file, and hands the command's merge data to SendGrid as
//     dynamic_template_data: SendGrid renders the email.
//   - [Local] renders local html/template files (subject, HTML and text
//     parts) for the console and file transports used in development.
//
// Both set the custom arguments that let webhook events be attributed to a
// command and a user (command_id, user_id, trigger, step, template, variant).
//
// The package does no I/O beyond reading template files at load time, sends
// nothing and keeps no state: its output goes to a transport
// (sink/sendgrid or sink/localmail) through the sink's delivery loop.
//
// # What a template sees
//
// The dot of a local template, and SendGrid's dynamic_template_data, is a map
// holding the command's merge data (the rule's data block) plus four keys
// the sink sets, which win over merge data of the same name: "trigger"
// (string), "step" (number), "variant" (string, "" without A/B variants) and
// "template" (string). Absent merge keys print nothing when guarded with
// {{with .key}}…{{end}}; templates should guard every optional key.
package render
