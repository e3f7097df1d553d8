package sink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink/ledger"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
)

// noteStopped is why the outcome of a command found InFlight is unknown.
const noteStopped = "a request carrying it was in flight when a run of the sink stopped"

// deadline is when the sink stops waiting for evidence about a request
// made at at.
func (s *Sink) deadline(at time.Time) time.Time {
	if s.cfg.UnknownDeadline < 0 {
		return at
	}
	return at.Add(s.cfg.UnknownDeadline)
}

// unresolved is the ledger change recording that the outcome of the
// command of r, carried by a request made at at, is unknown: the entry
// keeps the record, to be dead-lettered at the deadline unless evidence
// comes first.
func (s *Sink) unresolved(r *kgo.Record, id string, at time.Time, note string) ledger.Change {
	return ledger.Change{Partition: r.Partition, ID: id, Entry: &ledger.Entry{
		State: ledger.Unresolved, At: at, Deadline: s.deadline(at), Note: sendgrid.Sanitize(note),
		Source: &ledger.Source{Offset: r.Offset, Key: r.Key, Value: r.Value},
	}}
}

// settle settles the commands whose outcome is unknown: those that the
// evidence read from Topics.Outcomes proves accepted are recorded as sent;
// those of live partitions past their deadline are dead-lettered as
// outcome_unknown. It runs on the delivery loop between polls, when no
// request is on its way and no rebalance can run, so an InFlight entry it
// meets was left by a run that stopped.
func (s *Sink) settle(ctx context.Context, cl *kgo.Client) error {
	evs, live := s.outcomes.take()
	// Recording what happened must not be cut short by a stop.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	now := s.cfg.Now()
	if err := s.resolve(wctx, evs, now); err != nil {
		return err
	}
	return s.decide(wctx, cl, live, now)
}

// resolve records as sent the waiting commands that evs prove accepted.
func (s *Sink) resolve(ctx context.Context, evs []evidence, now time.Time) error {
	c := &s.cfg
	var (
		changes   []ledger.Change
		delivered []schema.SendCommand
		late      int
		done      = map[string]bool{}
	)
	for _, ev := range evs {
		if done[ev.command] {
			continue
		}
		e, ok, err := s.ledger.Get(ev.partition, ev.command)
		if errors.Is(err, ledger.ErrNotAssigned) {
			continue // revoked since: its new owner reads the evidence again
		}
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		switch e.State {
		case ledger.InFlight, ledger.Unresolved:
			c.Logger.Info("unknown outcome settled: a SendGrid event shows the command was accepted",
				"command", ev.command, "event", ev.event, "request_at", e.At)
			if e.Source != nil {
				if cmd, err := schema.UnmarshalCommand(e.Source.Value); err == nil {
					delivered = append(delivered, cmd)
				}
			}
		case ledger.Unknown:
			late++
			c.Logger.Warn("a command dead-lettered as outcome_unknown was accepted by SendGrid: its event came after the deadline",
				"command", ev.command, "event", ev.event, "event_at", ev.at)
		default:
			continue // sent, or expired
		}
		done[ev.command] = true
		changes = append(changes, ledger.Change{Partition: ev.partition, ID: ev.command, Entry: &ledger.Entry{State: ledger.Sent, At: now}})
	}
	if err := s.ledger.Record(ctx, changes...); err != nil {
		return err
	}
	if resolved := len(changes) - late; resolved > 0 {
		s.metrics.unknown.Add(ctx, int64(resolved), byWebhook)
		s.metrics.send(ctx, resultDelivered, resolved)
	}
	if late > 0 {
		s.metrics.late.Add(ctx, int64(late))
	}
	if c.OnDelivered != nil {
		for _, cmd := range delivered {
			c.OnDelivered(cmd)
		}
	}
	return nil
}

// decide dead-letters, as outcome_unknown, the waiting commands of live
// partitions whose deadline has passed, and updates the pending gauge.
func (s *Sink) decide(ctx context.Context, cl *kgo.Client, live map[int32]bool, now time.Time) error {
	c := &s.cfg
	var (
		dead    []*kgo.Record
		changes []ledger.Change
		pending int
	)
	parts := s.ledger.Assigned()
	slices.Sort(parts)
	for _, p := range parts {
		pend, err := s.ledger.Pending(p)
		if err != nil {
			return err
		}
		pending += len(pend)
		if !live[p] {
			continue // evidence written before the assignment may be unread
		}
		for _, pe := range pend {
			if pe.State != ledger.Unresolved || now.Before(pe.Deadline) {
				continue
			}
			e, ok, err := s.ledger.Get(p, pe.ID)
			if err != nil {
				return err
			}
			if !ok || e.State != ledger.Unresolved || e.Source == nil {
				continue
			}
			r := &kgo.Record{Topic: c.Topics.Commands, Partition: p, Offset: e.Source.Offset, Key: e.Source.Key, Value: e.Source.Value}
			dead = append(dead, s.deadLetter(r, schema.ReasonOutcomeUnknown, unknownMessage(&e)))
			changes = append(changes, ledger.Change{Partition: p, ID: pe.ID, Entry: &ledger.Entry{State: ledger.Unknown, At: now}})
		}
	}
	s.metrics.pending.Store(int64(pending - len(changes)))
	// Dead letters first, then the Unknown marks: a crash in between
	// dead-letters the command twice rather than never.
	if err := s.writeDeadLetters(ctx, cl, dead); err != nil {
		return err
	}
	if err := s.ledger.Record(ctx, changes...); err != nil {
		return err
	}
	if len(changes) > 0 {
		s.metrics.unknown.Add(ctx, int64(len(changes)), byDeadline)
	}
	return nil
}

// unknownMessage says why an Unresolved command is dead-lettered. Times
// come from the ledger; nothing about the user does.
func unknownMessage(e *ledger.Entry) string {
	return fmt.Sprintf("outcome unknown: %s (request at %s); no SendGrid event for it arrived by its deadline %s, %s later; SendGrid may have accepted it, so it is not sent again",
		e.Note, schema.FormatTime(e.At), schema.FormatTime(e.Deadline), e.Deadline.Sub(e.At).Round(time.Second))
}
