package backtest

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress is where a running backtest is: how far the rules have got
// through the input.
type Progress struct {
	// Events counts the events the rules have been applied to; Records
	// the records read up to the last of them.
	Events, Records int64
	Elapsed         time.Duration
	// Done and Total place those events in the input: bytes of a file, or
	// records of a topic range. Total is 0 when unknown.
	Done, Total int64
	// EventTime is the replay clock: the latest event time applied.
	EventTime time.Time
	// Final is set on the last call, when every event has been applied.
	Final bool
}

// Rate returns the events applied per second.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Events) / p.Elapsed.Seconds()
}

// Fraction returns how much of the input has been applied, in [0,1], and
// whether that is known.
func (p Progress) Fraction() (float64, bool) {
	if p.Total <= 0 {
		return 0, false
	}
	return min(max(float64(p.Done)/float64(p.Total), 0), 1), true
}

// snapshot reports the position of the slowest pack: the last batch all
// its events have been applied from.
func (d *dispatcher) snapshot(start time.Time, final bool) Progress {
	applied := int64(-1)
	for _, r := range d.runs {
		if n := r.applied.Load(); applied < 0 || n < applied {
			applied = n
		}
	}
	d.progMu.Lock()
	defer d.progMu.Unlock()
	// Drop the marks passed, keeping the last one reached.
	i := 0
	for i+1 < len(d.progMarks) && d.progMarks[i+1].events <= applied {
		i++
	}
	d.progMarks = d.progMarks[i:]
	p := Progress{Events: applied, Elapsed: time.Since(start), Final: final}
	if len(d.progMarks) > 0 && d.progMarks[0].events <= applied {
		m := d.progMarks[0]
		p.Records, p.Done, p.Total, p.EventTime = m.records, m.done, m.total, m.at
	}
	if final && len(d.progMarks) > 0 {
		m := d.progMarks[len(d.progMarks)-1]
		p.Records, p.Done, p.Total, p.EventTime = m.records, m.done, m.total, m.at
	}
	return p
}

// reportProgress calls cfg.Progress every interval until the returned
// function is called; stop(true) makes the final call.
func (d *dispatcher) reportProgress(cfg Config, start time.Time) (stop func(ok bool)) {
	if cfg.Progress == nil {
		return func(bool) {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(cfg.ProgressInterval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				cfg.Progress(d.snapshot(start, false))
			case <-done:
				return
			}
		}
	}()
	return func(ok bool) {
		close(done)
		wg.Wait()
		if ok {
			cfg.Progress(d.snapshot(start, true))
		}
	}
}

// ProgressPrinter draws progress on w: a bar redrawn in place when w is a
// terminal, else a plain line every Every (and one at the end).
type ProgressPrinter struct {
	W        io.Writer
	Terminal bool
	// Every is the interval of plain lines. Default 5s.
	Every time.Duration
	// Width is the bar's width in characters. Default 30.
	Width int

	last time.Duration
}

// Print draws p. Use it as Config.Progress.
func (pp *ProgressPrinter) Print(p Progress) {
	if pp.Terminal {
		fmt.Fprintf(pp.W, "\r\033[K%s", pp.bar(p))
		if p.Final {
			fmt.Fprintln(pp.W)
		}
		return
	}
	every := pp.Every
	if every <= 0 {
		every = 5 * time.Second
	}
	if !p.Final && p.Elapsed-pp.last < every {
		return
	}
	pp.last = p.Elapsed
	fmt.Fprintf(pp.W, "backtest: %s\n", line(p))
}

func (pp *ProgressPrinter) bar(p Progress) string {
	width := pp.Width
	if width <= 0 {
		width = 30
	}
	f, known := p.Fraction()
	if p.Final {
		f, known = 1, true
	}
	var b strings.Builder
	b.WriteByte('[')
	if known {
		full := int(f * float64(width))
		b.WriteString(strings.Repeat("=", full))
		if full < width {
			b.WriteByte('>')
			b.WriteString(strings.Repeat(" ", width-full-1))
		}
		fmt.Fprintf(&b, "] %3.0f%% ", f*100)
	} else {
		// Unknown size: a marker that moves with time.
		pos := int(p.Elapsed/(200*time.Millisecond)) % width
		b.WriteString(strings.Repeat(" ", pos) + "<=>" + strings.Repeat(" ", max(width-pos-3, 0)))
		b.WriteString("] ")
	}
	b.WriteString(counts(p))
	return b.String()
}

func line(p Progress) string {
	s := counts(p)
	if f, ok := p.Fraction(); ok {
		s = fmt.Sprintf("%.0f%%, %s", f*100, s)
	}
	if p.Final {
		s += fmt.Sprintf(", done in %s", p.Elapsed.Round(time.Millisecond))
	}
	return s
}

func counts(p Progress) string {
	s := fmt.Sprintf("%s events, %s/s", thousands(p.Events), thousands(int64(p.Rate())))
	if !p.EventTime.IsZero() {
		s += ", event time " + p.EventTime.Format("2006-01-02 15:04")
	}
	return s
}

// thousands prints n with thin separators: 1234567 → 1,234,567.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
