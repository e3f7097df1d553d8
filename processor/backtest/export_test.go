package backtest

import "context"

// ReadFile reads and decodes a JSONL file the way a backtest does (the
// same reader goroutine and hand-off) and does nothing else: the
// benchmark's baseline.
func ReadFile(ctx context.Context, path string) (events, refused int64, err error) {
	out := make(chan *batch, 4)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		errc <- (&fileSource{path: path}).read(ctx, out)
	}()
	for b := range out {
		events += int64(len(b.items))
		refused += int64(len(b.refused))
	}
	return events, refused, <-errc
}
