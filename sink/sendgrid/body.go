package sendgrid

import (
	"fmt"

	"github.com/segmentio/encoding/json"
	"github.com/sendgrid/sendgrid-go/helpers/mail"

	"github.com/microtrigger/microtrigger/sink/render"
)

// body encodes one request: the shared fields from the first message, one
// personalization per message.
func (c *Client) body(msgs []render.Message) ([]byte, error) {
	first := &msgs[0]
	m := mail.NewV3Mail()
	m.SetFrom(mail.NewEmail(first.From.Name, first.From.Email))
	if first.ReplyTo.Email != "" {
		m.SetReplyTo(mail.NewEmail(first.ReplyTo.Name, first.ReplyTo.Email))
	}
	if first.TemplateID != "" {
		m.SetTemplateID(first.TemplateID)
	} else {
		if len(msgs) != 1 {
			return nil, fmt.Errorf("messages without a template id go one per request")
		}
		if first.Subject == "" || (first.Text == "" && first.HTML == "") {
			return nil, fmt.Errorf("a message without a template id needs a subject and a body")
		}
		m.Subject = first.Subject
		if first.Text != "" {
			m.AddContent(mail.NewContent("text/plain", first.Text))
		}
		if first.HTML != "" {
			m.AddContent(mail.NewContent("text/html", first.HTML))
		}
	}
	if len(first.Categories) > 0 {
		m.AddCategories(first.Categories...)
	}
	if first.ASMGroupID > 0 {
		m.SetASM(mail.NewASM().SetGroupID(first.ASMGroupID))
	}
	for i := range msgs {
		p := mail.NewPersonalization()
		p.AddTos(mail.NewEmail(msgs[i].To.Name, msgs[i].To.Email))
		p.CustomArgs = msgs[i].CustomArgs
		if first.TemplateID != "" {
			p.DynamicTemplateData = msgs[i].Data
		}
		m.AddPersonalizations(p)
	}
	return json.Marshal(m)
}
