package sink

import (
	"context"
	"fmt"
	"io"

	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink/localmail"
	"github.com/microtrigger/microtrigger/sink/render"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
)

// Transport renders commands and delivers the messages. Deliver follows
// sendgrid.Client.Send's contract: one Result per message, the Journal told
// before and after every attempt, and an error only when it had to stop
// with messages unsettled.
type Transport interface {
	Render(cmd *schema.SendCommand) (render.Message, error)
	Deliver(ctx context.Context, msgs []render.Message, j sendgrid.Journal) ([]sendgrid.Result, error)
}

// SendGrid delivers through SendGrid dynamic templates.
func SendGrid(c *sendgrid.Client, m *render.Mapping) Transport {
	return sgTransport{c: c, r: render.NewDynamic(m)}
}

type sgTransport struct {
	c *sendgrid.Client
	r *render.Dynamic
}

func (t sgTransport) Render(cmd *schema.SendCommand) (render.Message, error) { return t.r.Render(cmd) }
func (t sgTransport) Deliver(ctx context.Context, msgs []render.Message, j sendgrid.Journal) ([]sendgrid.Result, error) {
	return t.c.Send(ctx, msgs, j)
}

// Console prints each email, rendered from local templates, to w.
func Console(w io.Writer, l *render.Local) Transport {
	return localTransport{r: l, write: localmail.NewConsole(w).Write}
}

// Files writes each email, rendered from local templates, as an .eml file
// into d.
func Files(d *localmail.Dir, l *render.Local) Transport {
	return localTransport{r: l, write: d.Write}
}

type localTransport struct {
	r     *render.Local
	write func(*render.Message) error
}

func (t localTransport) Render(cmd *schema.SendCommand) (render.Message, error) {
	return t.r.Render(cmd)
}

func (t localTransport) Deliver(ctx context.Context, msgs []render.Message, j sendgrid.Journal) ([]sendgrid.Result, error) {
	out := make([]sendgrid.Result, len(msgs))
	for i := range msgs {
		one := msgs[i : i+1]
		if err := j.Attempt(ctx, one); err != nil {
			return out, err
		}
		if err := t.write(&msgs[i]); err != nil {
			if serr := j.Settle(ctx, one, sendgrid.SettledNotAccepted); serr != nil {
				return out, serr
			}
			return out, fmt.Errorf("deliver %s: %w", msgs[i].CommandID, err)
		}
		if err := j.Settle(ctx, one, sendgrid.SettledAccepted); err != nil {
			return out, err
		}
		out[i] = sendgrid.Result{Outcome: sendgrid.Accepted, Attempts: 1}
	}
	return out, nil
}
