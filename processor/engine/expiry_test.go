package engine_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/processor/engine"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/schema"
)

// expiryPack has one trigger per window: each intent's own, a trigger's
// expire_after, and a step sent by a timer after quiet hours deferred it.
const expiryPack = `
policy:
  frequency: {per_day: 0, per_week: 0}
triggers:
  - {name: high, intent: high, on: [High], template: t}
  - {name: mid, intent: mid, on: [Mid], template: t}
  - {name: low, intent: low, on: [Low], template: t}
  - {name: custom, intent: high, on: [Custom], expire_after: 2h, template: t}
  - name: evening
    intent: mid
    on: [Evening]
    wait: 15m
    template: t
`

// TestExpiresAt: the engine writes expires_at = send_at + the trigger's
// window, for an email sent at once and for one a timer sends after quiet
// hours moved it.
func TestExpiresAt(t *testing.T) {
	pack, err := rules.LoadSources([]string{"p.yaml"}, map[string][]byte{"p.yaml": []byte(expiryPack)}, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(pack, engine.Options{})
	morning := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		event            string
		at               time.Time
		sendAt, expireAt time.Time
	}{
		{"High", morning, morning, morning.Add(15 * time.Minute)},
		{"Mid", morning, morning, morning.Add(3 * time.Hour)},
		{"Low", morning, morning, morning.Add(24 * time.Hour)},
		{"Custom", morning, morning, morning.Add(2 * time.Hour)},
		// Due at 21:05, inside the default quiet hours (21:00–08:00):
		// sent at 08:00 the next morning, with its window from then.
		{"Evening", morning.Add(11*time.Hour + 50*time.Minute),
			time.Date(2026, 3, 3, 8, 0, 0, 0, time.UTC), time.Date(2026, 3, 3, 11, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.event, func(t *testing.T) {
			u := state.New("user-1")
			u.Traits = map[string]any{"email": "u@example.com", "email_opt_in": true, "timezone": "UTC"}
			raw, _ := json.Marshal(map[string]any{
				"type": "track", "event": tc.event, "userId": "user-1", "messageId": "m-" + tc.event,
				"timestamp": schema.FormatTime(tc.at),
			})
			ev, err := schema.DecodeEvent(raw)
			if err != nil {
				t.Fatal(err)
			}
			cmds := eng.Event(u, &ev).Commands
			for due, ok := u.NextDue(); ok && len(cmds) == 0; due, ok = u.NextDue() {
				cmds = append(cmds, eng.Timer(u, due).Commands...)
			}
			if len(cmds) != 1 {
				t.Fatalf("%d commands, want 1", len(cmds))
			}
			c := cmds[0]
			if !c.SendAt.Equal(tc.sendAt) || !c.ExpiresAt.Equal(tc.expireAt) {
				t.Fatalf("send_at %s, expires_at %s; want %s, %s",
					schema.FormatTime(c.SendAt), schema.FormatTime(c.ExpiresAt), schema.FormatTime(tc.sendAt), schema.FormatTime(tc.expireAt))
			}
			// What the sink reads back is what the engine computed.
			b, err := schema.MarshalCommand(&c)
			if err != nil {
				t.Fatal(err)
			}
			back, err := schema.UnmarshalCommand(b)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Expiry().Equal(tc.expireAt) {
				t.Fatalf("decoded expiry %s, want %s", back.Expiry(), tc.expireAt)
			}
		})
	}
}
