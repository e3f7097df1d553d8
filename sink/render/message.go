package render

import (
	"errors"
	"maps"
	"strconv"

	"github.com/microtrigger/microtrigger/schema"
)

// ErrUnknownTemplate is returned (wrapped) for a command naming a template
// the renderer lacks. The sink dead-letters such commands with
// schema.ReasonUnknownTemplate.
var ErrUnknownTemplate = errors.New("render: unknown template")

// Address is an email address with an optional display name.
type Address struct {
	Email string `yaml:"email" json:"email"`
	Name  string `yaml:"name,omitempty" json:"name,omitempty"`
}

// Custom argument names put on every message. SendGrid copies them onto
// every webhook event of the message.
const (
	ArgCommandID = "command_id"
	ArgUserID    = "user_id"
	ArgTrigger   = "trigger"
	ArgStep      = "step"
	ArgTemplate  = "template"
	ArgVariant   = "variant"
)

// Message is one email to one recipient, rendered for a transport.
type Message struct {
	// CommandID is the id of the send-command the message comes from.
	CommandID string
	// To is the recipient.
	To Address
	// From and ReplyTo are the sender (ReplyTo may be empty).
	From    Address
	ReplyTo Address
	// TemplateID is the SendGrid dynamic template id ("d-…"); empty for
	// locally rendered messages.
	TemplateID string
	// Data is the template data: merge data plus trigger, step, variant and
	// template.
	Data map[string]any
	// CustomArgs attribute webhook events to the command (see Arg*).
	CustomArgs map[string]string
	// Categories label the message in SendGrid's statistics.
	Categories []string
	// ASMGroupID is SendGrid's unsubscribe group (0: none).
	ASMGroupID int
	// Subject, HTML and Text are set by the local renderer only.
	Subject, HTML, Text string
	// TraceParent is the W3C traceparent header of the command's record
	// ("" when it had none): the SendGrid request carrying the message
	// continues that trace.
	TraceParent string
}

// Renderer turns a command into a message.
type Renderer interface {
	Render(cmd *schema.SendCommand) (Message, error)
}

// templateData is the dot of a template: merge data plus the keys the sink
// sets.
func templateData(cmd *schema.SendCommand) map[string]any {
	d := make(map[string]any, len(cmd.Data)+4)
	maps.Copy(d, cmd.Data)
	d["trigger"] = cmd.Trigger
	d["step"] = cmd.Step
	d["variant"] = cmd.Variant
	d["template"] = cmd.Template
	return d
}

// customArgs are the attribution arguments of a command.
func customArgs(cmd *schema.SendCommand) map[string]string {
	a := map[string]string{
		ArgCommandID: cmd.ID,
		ArgUserID:    cmd.UserID,
		ArgTrigger:   cmd.Trigger,
		ArgStep:      strconv.Itoa(cmd.Step),
		ArgTemplate:  cmd.Template,
	}
	if cmd.Variant != "" {
		a[ArgVariant] = cmd.Variant
	}
	return a
}
