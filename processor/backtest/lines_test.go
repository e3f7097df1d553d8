package backtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/microtrigger/microtrigger/processor/backtest/report"
	"github.com/microtrigger/microtrigger/schema"
)

// splitLines is the obvious, whole-input version of lineReader.
func splitLines(in []byte, max int) (lines [][]byte, tooLong []bool) {
	if len(in) == 0 {
		return nil, nil
	}
	parts := bytes.Split(in, []byte("\n"))
	if len(parts[len(parts)-1]) == 0 {
		parts = parts[:len(parts)-1]
	}
	for i, p := range parts {
		p = bytes.TrimSuffix(p, []byte("\r"))
		if i == 0 {
			p = bytes.TrimPrefix(p, []byte("\xef\xbb\xbf"))
		}
		if len(p) > max {
			lines, tooLong = append(lines, nil), append(tooLong, true)
			continue
		}
		lines, tooLong = append(lines, p), append(tooLong, false)
	}
	return lines, tooLong
}

func readAllLines(t *testing.T, r io.Reader, block, max int) (lines [][]byte, tooLong []bool, consumed int64) {
	t.Helper()
	lr := newLineReader(r, max)
	lr.block = block
	for {
		line, no, long, err := lr.next()
		if errors.Is(err, io.EOF) {
			return lines, tooLong, lr.consumed
		}
		if err != nil {
			t.Fatal(err)
		}
		if no != int64(len(lines)+1) {
			t.Fatalf("line number %d, want %d", no, len(lines)+1)
		}
		lines, tooLong = append(lines, line), append(tooLong, long)
	}
}

func checkLines(t *testing.T, in []byte, block, max int) {
	t.Helper()
	wantLines, wantLong := splitLines(in, max)
	for name, r := range map[string]io.Reader{
		"whole":    bytes.NewReader(in),
		"one-byte": iotest.OneByteReader(bytes.NewReader(in)),
		"half":     iotest.HalfReader(bytes.NewReader(in)),
	} {
		lines, long, consumed := readAllLines(t, r, block, max)
		if len(lines) != len(wantLines) {
			t.Fatalf("%s: %d lines, want %d", name, len(lines), len(wantLines))
		}
		for i := range lines {
			if long[i] != wantLong[i] || !bytes.Equal(lines[i], wantLines[i]) {
				t.Fatalf("%s: line %d: %q (too long %v), want %q (too long %v)", name, i+1, lines[i], long[i], wantLines[i], wantLong[i])
			}
		}
		if consumed != int64(len(in)) {
			t.Fatalf("%s: consumed %d bytes of %d", name, consumed, len(in))
		}
	}
}

func TestLineReader(t *testing.T) {
	for _, in := range []string{
		"",
		"\n",
		"a",
		"a\n",
		"a\r\nb\r\n",
		"\xef\xbb\xbf{}\n{}",
		"short\n0123456789abcdef\nshort again\n",
		"0123456789abcdefghij",
		"x\n\n\ny",
	} {
		for _, block := range []int{1, 3, 16, 1 << 20} {
			checkLines(t, []byte(in), block, 10)
		}
	}
}

func TestLineReaderKeepsLines(t *testing.T) {
	// Lines returned earlier must not change as later blocks are read.
	in := bytes.Repeat([]byte("0123456789\n"), 100)
	lr := newLineReader(bytes.NewReader(in), 64)
	lr.block = 32
	var got [][]byte
	for {
		line, _, _, err := lr.next()
		if err != nil {
			break
		}
		got = append(got, line)
	}
	for i, l := range got {
		if string(l) != "0123456789" {
			t.Fatalf("line %d became %q", i+1, l)
		}
	}
}

func TestLineReaderError(t *testing.T) {
	boom := errors.New("boom")
	lr := newLineReader(io.MultiReader(bytes.NewReader([]byte("a\nb")), iotest.ErrReader(boom)), 10)
	if line, _, _, err := lr.next(); err != nil || string(line) != "a" {
		t.Fatalf("first line: %q, %v", line, err)
	}
	if _, _, _, err := lr.next(); !errors.Is(err, boom) {
		t.Fatalf("got %v, want the read error", err)
	}
}

func FuzzLineReader(f *testing.F) {
	f.Add([]byte("{\"type\":\"page\"}\n{}\r\n"), uint8(4), uint8(10))
	f.Add([]byte("\xef\xbb\xbfabc\r\n\r\n"), uint8(1), uint8(2))
	f.Add([]byte("0123456789012345678901234567890123456789\nx"), uint8(7), uint8(5))
	f.Fuzz(func(t *testing.T, in []byte, block, max uint8) {
		checkLines(t, in, int(block)+1, int(max))
	})
}

// FuzzReadLines feeds arbitrary bytes through the file input (lines, then
// schema.DecodeEvent): every line is either blank, refused with its number,
// or an event whose bytes are exactly the line's.
func FuzzReadLines(f *testing.F) {
	f.Add([]byte(`{"type":"page","userId":"u1","timestamp":"2026-03-02T09:00:00Z","context":{"page":{"path":"/pricing"}}}` + "\n\n" +
		`{"type":"track","userId":"u1","event":"Order Completed","timestamp":"2026-03-02T09:05:00Z"}` + "\r\nnot json\n"))
	f.Add([]byte(`{"type":"track","userId":"u1","timestamp":"yesterday"}` + "\n" + `{"type":"identify","anonymousId":"a","timestamp":"2026-03-02T09:00:00Z","traits":{"email":"a@example.com"}}`))
	f.Add([]byte("\xef\xbb\xbf{\"type\":\"page\",\"userId\":\"\xff\",\"timestamp\":\"2026-03-02T09:00:00Z\"}\n   \n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := make(chan *batch, 1<<16)
		if err := readLines(context.Background(), bytes.NewReader(in), int64(len(in)), 0, out); err != nil {
			t.Fatal(err)
		}
		close(out)
		lines, tooLong := splitLines(in, schema.MaxEventBytes)
		var items []item
		var refused []report.Refusal
		var records int64
		for b := range out {
			items = append(items, b.items...)
			refused = append(refused, b.refused...)
			records += b.records
		}
		if records != int64(len(items)+len(refused)) {
			t.Fatalf("%d records, %d events and %d refused", records, len(items), len(refused))
		}
		blanks := 0
		for i, l := range lines {
			if !tooLong[i] && blank(l) {
				blanks++
			}
		}
		if len(items)+len(refused)+blanks != len(lines) {
			t.Fatalf("%d lines: %d events, %d refused, %d blank", len(lines), len(items), len(refused), blanks)
		}
		for _, it := range items {
			if it.seq < 1 || int(it.seq) > len(lines) || !bytes.Equal(it.raw, lines[it.seq-1]) {
				t.Fatalf("event at line %d does not hold that line", it.seq)
			}
			if _, err := schema.DecodeEvent(it.raw); err != nil {
				t.Fatalf("line %d accepted but does not decode: %v", it.seq, err)
			}
		}
		for _, rf := range refused {
			if rf.Line < 1 || int(rf.Line) > len(lines) || rf.Reason == "" {
				t.Fatalf("refusal %+v", rf)
			}
		}
	})
}

// TestInterruptibleInput: a replay waiting for more standard input (a pipe
// that stays open) stops when its context ends, after the lines it had.
func TestInterruptibleInput(t *testing.T) {
	pr, pw := io.Pipe() // never closed: more input could always come
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan *batch, 4)
	errc := make(chan error, 1)
	go func() { errc <- readLines(ctx, interruptible(ctx, pr), 0, 0, out) }()
	if _, err := pw.Write([]byte(`{"type":"page","userId":"u1","messageId":"m1","timestamp":"2026-03-02T09:00:00Z"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("readLines: %v, want context.Canceled", err)
	}
}
