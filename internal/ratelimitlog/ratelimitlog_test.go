package ratelimitlog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC).Add(d)
}

// textHandler writes records as text lines without their time.
func textHandler(buf *bytes.Buffer) slog.Handler {
	return slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
}

// step is a record logged at a moment, or a Flush.
type step struct {
	at    time.Duration
	level slog.Level
	msg   string
	n     int    // times; 0 is once
	with  string // a value of attr "partition", through logger.With
	flush bool
}

func TestHandler(t *testing.T) {
	warn, info, errl := slog.LevelWarn, slog.LevelInfo, slog.LevelError
	for _, c := range []struct {
		name  string
		steps []step
		want  string
	}{
		{
			name:  "a burst passes, the rest is counted when the interval is over",
			steps: []step{{level: warn, msg: "boom", n: 10}, {at: 9 * time.Second, level: warn, msg: "boom"}, {at: 10 * time.Second, level: warn, msg: "boom"}},
			want: `level=WARN msg=boom
level=WARN msg=boom
level=WARN msg=boom
level=WARN msg="similar log lines suppressed" message=boom suppressed=8 interval=10s
level=WARN msg=boom
`,
		},
		{
			name:  "below the level nothing is limited",
			steps: []step{{level: info, msg: "partition restored", n: 5}},
			want:  strings.Repeat("level=INFO msg=\"partition restored\"\n", 5),
		},
		{
			name:  "each message and level is counted apart",
			steps: []step{{level: warn, msg: "a", n: 4}, {level: warn, msg: "b", n: 4}, {level: errl, msg: "a", n: 4}, {flush: true}},
			want: strings.Repeat("level=WARN msg=a\n", 3) + strings.Repeat("level=WARN msg=b\n", 3) + strings.Repeat("level=ERROR msg=a\n", 3) +
				`level=WARN msg="similar log lines suppressed" message=a suppressed=1 interval=10s
level=ERROR msg="similar log lines suppressed" message=a suppressed=1 interval=10s
level=WARN msg="similar log lines suppressed" message=b suppressed=1 interval=10s
`,
		},
		{
			name: "any later record writes the summaries of floods that stopped",
			steps: []step{{level: warn, msg: "unable to open connection to broker", n: 1000},
				{at: 12 * time.Second, level: info, msg: "partition restored"}, {at: 13 * time.Second, flush: true}},
			want: strings.Repeat("level=WARN msg=\"unable to open connection to broker\"\n", 3) +
				`level=WARN msg="similar log lines suppressed" message="unable to open connection to broker" suppressed=997 interval=10s
level=INFO msg="partition restored"
`,
		},
		{
			name:  "derived handlers share the counts; the summary has no derived attrs",
			steps: []step{{level: warn, msg: "fetch error", with: "1", n: 2}, {level: warn, msg: "fetch error", with: "2", n: 2}, {at: time.Minute, flush: true}},
			want: `level=WARN msg="fetch error" partition=1
level=WARN msg="fetch error" partition=1
level=WARN msg="fetch error" partition=2
level=WARN msg="similar log lines suppressed" message="fetch error" suppressed=1 interval=10s
`,
		},
		{
			name:  "flush writes each count once",
			steps: []step{{level: warn, msg: "boom", n: 5}, {flush: true}, {flush: true}, {at: time.Second, level: warn, msg: "boom"}, {at: 2 * time.Second, flush: true}},
			want: strings.Repeat("level=WARN msg=boom\n", 3) +
				"level=WARN msg=\"similar log lines suppressed\" message=boom suppressed=2 interval=10s\n" +
				"level=WARN msg=\"similar log lines suppressed\" message=boom suppressed=1 interval=10s\n",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			clk := &clock{}
			clk.set(0)
			h := New(textHandler(&buf), Config{Burst: 3, Interval: 10 * time.Second, Now: clk.Now})
			log := slog.New(h)
			for _, s := range c.steps {
				clk.set(s.at)
				if s.flush {
					h.Flush(context.Background())
					continue
				}
				l := log
				if s.with != "" {
					l = log.With("partition", s.with)
				}
				for range max(s.n, 1) {
					l.Log(context.Background(), s.level, s.msg)
				}
			}
			if got := buf.String(); got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

// TestSummariesPassAnotherLimiter: a limiter wrapping another (the Kafka
// client's logger inside the command's) has its summaries passed on
// unlimited, however many floods it counts.
func TestSummariesPassAnotherLimiter(t *testing.T) {
	var buf bytes.Buffer
	clk := &clock{}
	clk.set(0)
	outer := New(textHandler(&buf), Config{Burst: 1, Now: clk.Now})
	inner := New(outer, Config{Burst: 1, Now: clk.Now})
	log := slog.New(inner)
	for _, m := range []string{"a", "b", "c"} {
		log.Warn(m)
		log.Warn(m)
	}
	inner.Flush(context.Background())
	if n := strings.Count(buf.String(), SummaryMessage); n != 3 {
		t.Errorf("%d summaries, want 3:\n%s", n, buf.String())
	}
}

// TestHandlerConcurrent: records logged at once from many goroutines are
// each either passed or counted.
func TestHandlerConcurrent(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	clk := &clock{}
	clk.set(0)
	h := New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil), Config{Burst: 5, Now: clk.Now})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				slog.New(h).Warn("boom")
			}
		})
	}
	wg.Wait()
	h.Flush(context.Background())
	out := buf.String()
	if n := strings.Count(out, "msg=boom"); n != 5 || !strings.Contains(out, "suppressed=795") {
		t.Errorf("%d passed:\n%s", n, out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
