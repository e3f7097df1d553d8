package sink

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/microtrigger/microtrigger/internal/crashpoint"
	"github.com/microtrigger/microtrigger/internal/tracing"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink/ledger"
	"github.com/microtrigger/microtrigger/sink/render"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
)

// item is a command on its way to the transport.
type item struct {
	rec *kgo.Record
	cmd schema.SendCommand
}

// process settles one poll: every record is delivered, skipped as a
// duplicate, or dead-lettered, and the ledger records it, before it
// returns nil.
func (s *Sink) process(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	c := &s.cfg
	var (
		items      []item
		msgs       []render.Message
		dead       []*kgo.Record
		unresolved []ledger.Change // outcome unknown: waiting for evidence
		expired    []ledger.Change // recorded Expired once dead-lettered
		expiredBy  = map[string]int64{}
		duplicates int
		seen       = make(map[string]bool, len(recs))
		partOf     = make(map[string]int32, len(recs))
		// One reading of the clock for the poll: its records are read
		// together.
		now = c.Now()
	)
	deadLetter := func(r *kgo.Record, reason schema.Reason, msg string) {
		dead = append(dead, s.deadLetter(r, reason, msg))
	}
	for _, r := range recs {
		cmd, err := schema.UnmarshalCommand(r.Value)
		if err != nil {
			deadLetter(r, schema.ReasonBadCommand, sendgrid.Sanitize(err.Error()))
			continue
		}
		if seen[cmd.ID] {
			duplicates++
			continue
		}
		seen[cmd.ID] = true
		e, ok, err := s.ledger.Get(r.Partition, cmd.ID)
		if err != nil {
			return err
		}
		if ok {
			switch e.State {
			case ledger.Sent, ledger.Unknown, ledger.Expired, ledger.Unresolved:
				duplicates++
				c.Logger.Debug("duplicate command skipped", "command", cmd.ID, "state", e.State.String())
				continue
			case ledger.InFlight:
				// A request carrying it was made and its answer never
				// recorded: a run of the sink stopped mid-request. Its
				// deadline runs from that request, as if this run had
				// made it.
				c.Logger.Warn("command was in flight when a previous run stopped; waiting for SendGrid's events before deciding",
					"command", cmd.ID, "since", e.At, "deadline", s.deadline(e.At))
				unresolved = append(unresolved, s.unresolved(r, cmd.ID, e.At, noteStopped))
				continue
			}
		}
		// Past its window the email is no use (a backlog: replay's answer
		// after an outage, a group reset), whatever its template.
		if exp := cmd.Expiry(); now.After(exp) {
			dead = append(dead, s.deadLetterRecord(r, schema.ReasonExpired, expiredMessage(&cmd, now)))
			expired = append(expired, ledger.Change{Partition: r.Partition, ID: cmd.ID})
			expiredBy[triggerLabel(cmd.Trigger)]++
			continue
		}
		msg, err := c.Transport.Render(&cmd)
		if err != nil {
			reason := schema.ReasonBadCommand
			if errors.Is(err, render.ErrUnknownTemplate) {
				reason = schema.ReasonUnknownTemplate
			}
			deadLetter(r, reason, sendgrid.Sanitize(err.Error()))
			continue
		}
		msg.TraceParent = tracing.Headers{R: r}.Get(tracing.HeaderTraceparent)
		partOf[cmd.ID] = r.Partition
		items = append(items, item{rec: r, cmd: cmd})
		msgs = append(msgs, msg)
	}

	var (
		results   []sendgrid.Result
		derr      error
		delivered []schema.SendCommand
	)
	if len(msgs) > 0 {
		j := &journal{s: s, partOf: partOf, at: make(map[string]time.Time, len(msgs))}
		results, derr = c.Transport.Deliver(ctx, msgs, j)
		for i, res := range results {
			it := &items[i]
			switch res.Outcome {
			case sendgrid.Accepted:
				delivered = append(delivered, it.cmd)
			case sendgrid.Rejected:
				deadLetter(it.rec, schema.ReasonRejected, res.Message)
			case sendgrid.Exhausted:
				deadLetter(it.rec, schema.ReasonRetriesExhausted, res.Message)
			case sendgrid.Unknown:
				unresolved = append(unresolved, s.unresolved(it.rec, it.cmd.ID, j.attempted(it.cmd.ID), res.Message))
			}
		}
	}
	// Dead letters first, then the Expired marks: a crash in between
	// dead-letters the command again rather than never. The Unresolved
	// marks, recorded before the offsets are committed, carry the command
	// on until evidence or its deadline settles it (see settle).
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.writeDeadLetters(wctx, cl, dead); err != nil {
		return errors.Join(derr, err)
	}
	if len(unresolved) > 0 || len(expired) > 0 {
		at := c.Now()
		for i := range expired {
			expired[i].Entry = &ledger.Entry{State: ledger.Expired, At: at}
		}
		if err := s.ledger.Record(wctx, append(unresolved, expired...)...); err != nil {
			return errors.Join(derr, err)
		}
	}
	if len(unresolved) > 0 {
		c.Logger.Warn("outcome unknown: waiting for SendGrid's events before deciding",
			"commands", len(unresolved), "deadline", unresolved[0].Entry.Deadline)
	}
	if len(expired) > 0 {
		triggers := make([]string, 0, len(expiredBy))
		for t, n := range expiredBy {
			s.metrics.expired.Add(ctx, n, metric.WithAttributes(attribute.String("trigger", t)))
			triggers = append(triggers, t)
		}
		sort.Strings(triggers)
		// One line per poll, not per command: a backlog expires by the
		// thousand.
		c.Logger.Warn("expired commands dead-lettered unsent", "count", len(expired), "triggers", triggers)
	}
	s.metrics.send(ctx, resultDelivered, len(delivered))
	s.metrics.send(ctx, resultDuplicate, duplicates)
	if len(delivered) > 0 || len(dead) > 0 {
		c.Logger.Debug("batch settled", "records", len(recs), "delivered", len(delivered), "dead_letters", len(dead), "duplicates", duplicates)
	}
	if c.OnDelivered != nil {
		for _, cmd := range delivered {
			c.OnDelivered(cmd)
		}
	}
	return derr
}

// writeDeadLetters produces dead and counts them.
func (s *Sink) writeDeadLetters(ctx context.Context, cl *kgo.Client, dead []*kgo.Record) error {
	if len(dead) == 0 {
		return nil
	}
	if err := cl.ProduceSync(ctx, dead...).FirstErr(); err != nil {
		return fmt.Errorf("sink: write dead letters: %w", err)
	}
	for _, d := range dead {
		reason := string(d.Headers[0].Value)
		s.metrics.dlq.Add(ctx, 1, reasonAttr(reason))
		s.metrics.send(ctx, reason, 1)
	}
	return nil
}

// deadLetter builds the commands-dlq record of r, and logs it.
func (s *Sink) deadLetter(r *kgo.Record, reason schema.Reason, msg string) *kgo.Record {
	s.cfg.Logger.Warn("command dead-lettered", "reason", string(reason), "message", msg, "partition", r.Partition, "offset", r.Offset)
	return s.deadLetterRecord(r, reason, msg)
}

// expiredMessage says why cmd was not sent. Times and the trigger come
// from the command; nothing about the user does.
func expiredMessage(cmd *schema.SendCommand, now time.Time) string {
	exp := cmd.Expiry()
	from := "its expires_at"
	if cmd.ExpiresAt.IsZero() {
		from = fmt.Sprintf("the end of its %s intent window (the command has no expires_at)", cmd.Intent)
		if schema.IntentWindow(cmd.Intent) == 0 {
			from = "the end of the longest intent window (the command has no expires_at and no known intent)"
		}
	}
	return fmt.Sprintf("expired: read at %s, %s after %s %s (send_at %s); not sent",
		schema.FormatTime(now), now.Sub(exp).Round(time.Second), from, schema.FormatTime(exp), schema.FormatTime(cmd.SendAt))
}

// deadLetterRecord builds the commands-dlq record of r.
func (s *Sink) deadLetterRecord(r *kgo.Record, reason schema.Reason, msg string) *kgo.Record {
	d := schema.DeadLetter{Key: r.Key, Value: r.Value, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Reason: reason, Message: msg}
	hs := d.Headers()
	out := &kgo.Record{Topic: s.cfg.Topics.CommandsDLQ, Key: r.Key, Value: r.Value, Headers: make([]kgo.RecordHeader, len(hs))}
	for i, h := range hs {
		out.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
	}
	return out
}

// journal records every attempt in the ledger: InFlight before, Sent or
// cleared after. An unknown outcome stays InFlight until process records
// it Unresolved.
type journal struct {
	s      *Sink
	partOf map[string]int32

	mu sync.Mutex // Deliver attempts requests concurrently
	at map[string]time.Time
}

// attempted returns when the last attempt carrying a command began.
func (j *journal) attempted(id string) time.Time {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.at[id]
}

func (j *journal) changes(msgs []render.Message, e *ledger.Entry) []ledger.Change {
	out := make([]ledger.Change, len(msgs))
	for i, m := range msgs {
		out[i] = ledger.Change{Partition: j.partOf[m.CommandID], ID: m.CommandID, Entry: e}
	}
	return out
}

func (j *journal) Attempt(ctx context.Context, msgs []render.Message) error {
	j.s.beat() // every attempt is progress, however long its backoff was
	now := j.s.cfg.Now()
	j.mu.Lock()
	for _, m := range msgs {
		j.at[m.CommandID] = now
	}
	j.mu.Unlock()
	err := j.s.ledger.Record(ctx, j.changes(msgs, &ledger.Entry{State: ledger.InFlight, At: now})...)
	crashpoint.Hit(crashpoint.SinkAfterAttempt)
	return err
}

func (j *journal) Settle(ctx context.Context, msgs []render.Message, st sendgrid.Settlement) error {
	var changes []ledger.Change
	switch st {
	case sendgrid.SettledAccepted:
		crashpoint.Hit(crashpoint.SinkBeforeSettle)
		changes = j.changes(msgs, &ledger.Entry{State: ledger.Sent, At: j.s.cfg.Now()})
	case sendgrid.SettledNotAccepted:
		changes = j.changes(msgs, nil)
	default:
		return nil
	}
	// What SendGrid answered is recorded whatever it takes: left unrecorded,
	// an accepted request would be dead-lettered as outcome_unknown when
	// its commands are read again. So a broker away is waited for while the
	// sink runs; once it is stopping, one last attempt is not cut short.
	wait := 500 * time.Millisecond
	for {
		j.s.beat()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := j.s.ledger.Record(rctx, changes...)
		cancel()
		if err == nil || ctx.Err() != nil || errors.Is(err, ledger.ErrNotAssigned) {
			return err
		}
		j.s.cfg.Logger.Warn("record a settled request in the ledger; retrying", "messages", len(msgs), "err", err, "retry_in", wait.String())
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}
