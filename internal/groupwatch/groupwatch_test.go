package groupwatch

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newWatch() (*Watch, *clock, *bytes.Buffer) {
	c := &clock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	var logs bytes.Buffer
	h := slog.NewTextHandler(&logs, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	return New(Config{Logger: slog.New(h), Now: c.now}), c, &logs
}

var errDial = errors.New("dial tcp 127.0.0.1:9092: connect: connection refused")

func TestWatch(t *testing.T) {
	ok := kgo.BrokerE2E{TimeToWrite: time.Millisecond}
	for _, tc := range []struct {
		name  string
		steps func(w *Watch, c *clock)
		// joined and reachable at the end; lines that must be logged, in order.
		joined, reachable bool
		logs              []string
	}{
		{
			name:      "before the first assignment",
			steps:     func(*Watch, *clock) {},
			reachable: true,
		},
		{
			name: "an empty assignment joins",
			steps: func(w *Watch, _ *clock) {
				w.Assigned(nil)
			},
			joined: true, reachable: true,
			logs: []string{`level=INFO msg="partitions assigned" partitions=[] count=0 owned=[]`},
		},
		{
			name: "assigned, revoked, lost",
			steps: func(w *Watch, _ *clock) {
				w.Assigned([]int32{3, 1})
				w.Assigned([]int32{0})
				w.Revoked([]int32{3})
				w.Lost([]int32{0, 1})
			},
			reachable: true,
			logs: []string{
				`msg="partitions assigned" partitions="[1 3]" count=2 owned="[1 3]"`,
				`msg="partitions assigned" partitions=[0] count=1 owned="[0 1 3]"`,
				`msg="partitions revoked" partitions=[3] count=1 owned="[0 1]"`,
				`level=WARN msg="partitions lost with the group session" partitions="[0 1]" count=2`,
			},
		},
		{
			name: "a group session error unjoins",
			steps: func(w *Watch, _ *clock) {
				w.Assigned([]int32{1})
				w.OnGroupManageError(errors.New("UNKNOWN_MEMBER_ID"))
			},
			reachable: true,
			logs:      []string{`level=WARN msg="group session failed; rejoining" err=UNKNOWN_MEMBER_ID`},
		},
		{
			name: "a long join is logged while it waits, then when answered",
			steps: func(w *Watch, c *clock) {
				w.OnBrokerWrite(kgo.BrokerMetadata{}, joinKey, 100, 0, 0, nil)
				for range 12 {
					c.t = c.t.Add(time.Second)
					w.check()
				}
				c.t = c.t.Add(500 * time.Millisecond)
				w.OnBrokerE2E(kgo.BrokerMetadata{}, joinKey, kgo.BrokerE2E{ReadWait: 12500 * time.Millisecond})
			},
			reachable: true,
			logs: []string{
				`level=INFO msg="joining group"`,
				`level=WARN msg="still waiting for the group to rebalance" request=JoinGroup waited=5s`,
				`level=WARN msg="still waiting for the group to rebalance" request=JoinGroup waited=10s`,
				`level=WARN msg="group request answered slowly" request=JoinGroup after=12.5s`,
			},
		},
		{
			name: "a failed heartbeat",
			steps: func(w *Watch, _ *clock) {
				w.OnBrokerE2E(kgo.BrokerMetadata{}, heartbeatKey, kgo.BrokerE2E{ReadErr: errors.New("EOF")})
			},
			reachable: true,
			logs:      []string{`level=WARN msg="group request failed" request=Heartbeat after=0s err=EOF`},
		},
		{
			name: "failures for longer than the bound: unreachable, then back",
			steps: func(w *Watch, c *clock) {
				w.OnBrokerE2E(kgo.BrokerMetadata{}, int16(1), ok)
				for range 11 {
					c.t = c.t.Add(time.Second)
					w.OnBrokerConnect(kgo.BrokerMetadata{}, 0, nil, errDial)
					w.check()
				}
				if w.Reachable() {
					panic("reachable after 11s of failures")
				}
				c.t = c.t.Add(time.Second)
				w.OnBrokerE2E(kgo.BrokerMetadata{}, int16(1), ok)
			},
			reachable: true,
			logs: []string{
				`level=WARN msg="kafka unreachable" no_answer_for=10s last_err="dial tcp 127.0.0.1:9092: connect: connection refused"`,
				`level=INFO msg="kafka reachable again" no_answer_for=12s`,
			},
		},
		{
			name: "failures within the bound are no outage",
			steps: func(w *Watch, c *clock) {
				c.t = c.t.Add(9 * time.Second)
				w.OnBrokerConnect(kgo.BrokerMetadata{}, 0, nil, errDial)
				w.check()
			},
			reachable: true,
		},
		{
			name: "a join held by the coordinator is no silence",
			steps: func(w *Watch, c *clock) {
				w.OnBrokerWrite(kgo.BrokerMetadata{}, joinKey, 100, 0, 0, nil)
				c.t = c.t.Add(time.Minute)
			},
			reachable: true,
			logs:      []string{`msg="joining group"`},
		},
		{
			name: "silence without failures",
			steps: func(_ *Watch, c *clock) {
				c.t = c.t.Add(10 * time.Second)
			},
			reachable: false,
		},
		{
			name: "still down",
			steps: func(w *Watch, c *clock) {
				c.t = c.t.Add(time.Second)
				w.OnBrokerConnect(kgo.BrokerMetadata{}, 0, nil, errDial)
				c.t = c.t.Add(9 * time.Second)
			},
			reachable: false,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, c, logs := newWatch()
			tc.steps(w, c)
			if got := w.Joined(); got != tc.joined {
				t.Errorf("joined %v, want %v", got, tc.joined)
			}
			if got := w.Reachable(); got != tc.reachable {
				t.Errorf("reachable %v, want %v", got, tc.reachable)
			}
			if err := w.Err(); (err == nil) != (tc.joined && tc.reachable) {
				t.Errorf("Err() = %v with joined %v, reachable %v", err, tc.joined, tc.reachable)
			}
			text := logs.String()
			rest := text
			for _, want := range tc.logs {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("log lacks (in order) %s\nlogs:\n%s", want, text)
				}
				rest = rest[i+len(want):]
			}
			if len(tc.logs) == 0 && text != "" {
				t.Errorf("unexpected logs:\n%s", text)
			}
		})
	}
}

// TestClientLogsAtWarn: the client's own info lines (one per transaction)
// stay out of the log; its warnings reach it.
func TestClientLogsAtWarn(t *testing.T) {
	var logs bytes.Buffer
	w := New(Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	l := slog.New(warnOnly{w.cfg.Logger.Handler()})
	l.Info("beginning transaction")
	l.Warn("unable to dial")
	if s := logs.String(); strings.Contains(s, "beginning transaction") || !strings.Contains(s, "unable to dial") {
		t.Errorf("logs:\n%s", s)
	}
}
