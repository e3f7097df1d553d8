package backtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/microtrigger/microtrigger/processor/backtest/report"
	"github.com/microtrigger/microtrigger/schema"
)

// item is one decoded event, in replay order.
type item struct {
	ev  schema.Event
	raw []byte
	seq int64 // the line number, or the position in the merged topic range
}

// batch is what a source hands on at a time.
type batch struct {
	items   []item
	refused []report.Refusal
	records int64 // records read, refused ones included
	// done and total place the source in its input (bytes of a file,
	// records of a topic range); total is 0 when unknown.
	done, total int64
}

// batchSize is how many events a batch carries.
const batchSize = 4096

// source reads an input and sends its events, in replay order, to out.
type source interface {
	read(ctx context.Context, out chan<- *batch) error
	kind() string // "file" or "topic"
	name() string
}

// send hands b on unless ctx is done.
func send(ctx context.Context, out chan<- *batch, b *batch) error {
	select {
	case out <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refusal describes a record DecodeEvent refused. A ValidationError
// names fields and positions only; any other error is not quoted, as it
// could hold the record's bytes.
func refusal(err error) report.Refusal {
	var ve *schema.ValidationError
	if errors.As(err, &ve) {
		return report.Refusal{Reason: string(ve.Reason), Field: ve.Field, Message: ve.Msg}
	}
	return report.Refusal{Reason: string(schema.ReasonNotJSON), Message: "record does not decode"}
}

// fileSource reads a JSONL file ("-": standard input): one event per line.
// Blank lines are skipped; a line that does not decode is refused, with its
// number.
type fileSource struct {
	path string
	// maxSkew bounds event times against receivedAt or sentAt.
	maxSkew time.Duration
}

func (s *fileSource) kind() string { return "file" }
func (s *fileSource) name() string { return s.path }

func (s *fileSource) read(ctx context.Context, out chan<- *batch) error {
	if s.path == "-" {
		return readLines(ctx, interruptible(ctx, os.Stdin), 0, s.maxSkew, out)
	}
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("open input: %w", err)
	}
	defer f.Close()
	var total int64
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		total = st.Size()
	}
	return readLines(ctx, f, total, s.maxSkew, out)
}

// interruptible returns a reader of r whose reads end when ctx does, so
// that an interrupted backtest stops rather than wait for input on a pipe
// or a terminal (a read of standard input cannot be interrupted). The
// copy of r stays blocked until r has more input or ends; the process is
// stopping by then.
func interruptible(ctx context.Context, r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, r)
		pw.CloseWithError(err)
	}()
	context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })
	return pr
}

func readLines(ctx context.Context, r io.Reader, total int64, maxSkew time.Duration, out chan<- *batch) error {
	lr := newLineReader(r, schema.MaxEventBytes)
	b := &batch{items: make([]item, 0, batchSize), total: total}
	for {
		line, no, tooLong, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read input after line %d: %w", no, err)
		}
		switch {
		case tooLong:
			b.records++
			rf := refusal(&schema.ValidationError{Reason: schema.ReasonTooLarge,
				Msg: fmt.Sprintf("line is over the %d byte limit", schema.MaxEventBytes)})
			rf.Line = no
			b.refused = append(b.refused, rf)
		case blank(line):
		default:
			b.records++
			ev, err := schema.DecodeEvent(line)
			if err == nil {
				// A file has no arrival time of its own: receivedAt
				// or sentAt bound the event time, when present.
				err = schema.CheckArrival(&ev, time.Time{}, maxSkew)
			}
			if err != nil {
				rf := refusal(err)
				rf.Line = no
				b.refused = append(b.refused, rf)
				continue
			}
			b.items = append(b.items, item{ev: ev, raw: line, seq: no})
		}
		if len(b.items) >= batchSize {
			b.done = lr.consumed
			if err := send(ctx, out, b); err != nil {
				return err
			}
			b = &batch{items: make([]item, 0, batchSize), total: total}
		}
	}
	b.done = lr.consumed
	return send(ctx, out, b)
}
