package sendgrid

import (
	"context"
	"sync"
	"time"
)

// limiter is a token bucket shared by every request of a client, which can
// also be paused until a time (a 429's reset). It reads time and sleeps
// through injected functions, so tests never wait.
type limiter struct {
	mu     sync.Mutex
	rate   float64 // tokens per second; 0 = unlimited
	burst  float64
	tokens float64
	last   time.Time
	pause  time.Time
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
}

func newLimiter(rate float64, burst int, now func() time.Time, sleep func(context.Context, time.Duration) error) *limiter {
	if burst < 1 {
		burst = 1
	}
	return &limiter{rate: rate, burst: float64(burst), tokens: float64(burst), now: now, sleep: sleep}
}

// wait blocks until a request may start.
func (l *limiter) wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		now := l.now()
		var d time.Duration
		switch {
		case now.Before(l.pause):
			d = l.pause.Sub(now)
		case l.rate <= 0:
			l.mu.Unlock()
			return nil
		default:
			if !l.last.IsZero() {
				l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
			}
			l.last = now
			if l.tokens >= 1 {
				l.tokens--
				l.mu.Unlock()
				return nil
			}
			d = time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
			if d <= 0 {
				d = time.Millisecond
			}
		}
		l.mu.Unlock()
		if err := l.sleep(ctx, d); err != nil {
			return err
		}
	}
}

// pauseUntil stops every request from starting before t.
func (l *limiter) pauseUntil(t time.Time) {
	l.mu.Lock()
	if t.After(l.pause) {
		l.pause = t
	}
	l.mu.Unlock()
}
