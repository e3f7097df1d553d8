package ratelimitlog

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// SummaryMessage is the message of the records that count suppressed ones.
const SummaryMessage = "similar log lines suppressed"

// Config configures a Handler. Zero fields take the defaults.
type Config struct {
	// Burst is how many records with one message pass per Interval.
	// Default 10.
	Burst int
	// Interval is the window Burst counts in. Default 10s.
	Interval time.Duration
	// Level is the lowest level limited; records below it pass
	// unlimited. Default slog.LevelWarn.
	Level slog.Leveler
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Handler passes records on to another handler, at most Burst per
// Interval with one message. Handlers derived with WithAttrs and WithGroup
// share its counts.
type Handler struct {
	next slog.Handler
	st   *limiter
}

type key struct {
	level slog.Level
	msg   string
}

// window counts the records of one key since start.
type window struct {
	start      time.Time
	n          int
	suppressed int
}

// limiter is what a Handler and the handlers derived from it share.
type limiter struct {
	cfg  Config
	root slog.Handler // where summaries go: without derived attrs or groups

	mu        sync.Mutex
	windows   map[key]*window
	lastSweep time.Time
}

// summary is a summary record to write.
type summary struct {
	key
	count int
}

// New returns a Handler that passes records on to next.
func New(next slog.Handler, cfg Config) *Handler {
	if cfg.Burst <= 0 {
		cfg.Burst = 10
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Level == nil {
		cfg.Level = slog.LevelWarn
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{next: next, st: &limiter{cfg: cfg, root: next, windows: map[key]*window{}}}
}

// Enabled reports whether the wrapped handler handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle passes r on unless Burst records with its message have passed in
// the current interval; it writes the summaries that are due first.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	pass, due := h.st.admit(r)
	h.st.write(ctx, due)
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a Handler sharing h's counts.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(as), st: h.st}
}

// WithGroup returns a Handler sharing h's counts.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), st: h.st}
}

// Flush writes the summaries of every record suppressed so far: when the
// program stops, so that no count is lost.
func (h *Handler) Flush(ctx context.Context) {
	l := h.st
	l.mu.Lock()
	var due []summary
	for k, w := range l.windows {
		if w.suppressed > 0 {
			due = append(due, summary{k, w.suppressed})
			w.suppressed = 0
		}
	}
	l.mu.Unlock()
	l.write(ctx, due)
}

// admit says whether r passes, and returns the summaries due at its time.
func (l *limiter) admit(r slog.Record) (bool, []summary) {
	limited := r.Level >= l.cfg.Level.Level() && r.Message != SummaryMessage
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var due []summary
	if now.Sub(l.lastSweep) >= l.cfg.Interval {
		l.lastSweep = now
		for k, w := range l.windows {
			if now.Sub(w.start) >= l.cfg.Interval {
				if w.suppressed > 0 {
					due = append(due, summary{k, w.suppressed})
				}
				delete(l.windows, k)
			}
		}
	}
	if !limited {
		return true, due
	}
	k := key{r.Level, r.Message}
	w := l.windows[k]
	if w != nil && now.Sub(w.start) >= l.cfg.Interval {
		if w.suppressed > 0 {
			due = append(due, summary{k, w.suppressed})
		}
		w = nil
	}
	if w == nil {
		w = &window{start: now}
		l.windows[k] = w
	}
	w.n++
	if w.n > l.cfg.Burst {
		w.suppressed++
		return false, due
	}
	return true, due
}

// write writes summaries to the root handler, in the order of their
// messages.
func (l *limiter) write(ctx context.Context, due []summary) {
	if len(due) == 0 {
		return
	}
	slices.SortFunc(due, func(a, b summary) int {
		if c := strings.Compare(a.msg, b.msg); c != 0 {
			return c
		}
		return int(a.level - b.level)
	})
	now := l.cfg.Now()
	for _, s := range due {
		if !l.root.Enabled(ctx, s.level) {
			continue
		}
		r := slog.NewRecord(now, s.level, SummaryMessage, 0)
		r.AddAttrs(slog.String("message", s.msg), slog.Int("suppressed", s.count), slog.Duration("interval", l.cfg.Interval))
		l.root.Handle(ctx, r)
	}
}
