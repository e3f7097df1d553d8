package backtest_test

import (
	"bufio"
	"io"

	"github.com/microtrigger/microtrigger/internal/clickstream"
)

// writeJSONL writes generated events as JSONL, in their order.
func writeJSONL(w io.Writer, evs []clickstream.Event) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	for _, e := range evs {
		if _, err := bw.Write(e.Value); err != nil {
			return err
		}
		if err := bw.WriteByte('\n'); err != nil {
			return err
		}
	}
	return bw.Flush()
}
