package backtest

import (
	"bytes"
	"errors"
	"io"
)

// lineReader splits a JSONL stream into lines. It reads in large blocks and
// returns slices of them; a block is never reused, so a returned line stays
// valid for as long as it is referenced (events waiting in the reorder
// buffer keep their bytes).
type lineReader struct {
	r     io.Reader
	block int // bytes read at a time
	max   int // a longer line is refused without being buffered whole

	buf        []byte // the current block: buf[start:end] is unread
	start, end int
	eof        bool
	err        error

	no       int64 // number of the last line returned (1-based)
	consumed int64 // bytes of input consumed, line endings included
}

const defaultBlock = 1 << 20

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: r, block: defaultBlock, max: max}
}

// next returns the next line without its line ending ("\n" or "\r\n") and
// its number. For a line longer than max bytes it returns tooLong and no
// content. At the end of input it returns io.EOF; a final line without a
// line ending is still a line.
func (l *lineReader) next() (line []byte, no int64, tooLong bool, err error) {
	scanned := 0 // bytes of buf[start:end] known to hold no newline
	for {
		if i := bytes.IndexByte(l.buf[l.start+scanned:l.end], '\n'); i >= 0 {
			i += l.start + scanned
			line = l.buf[l.start:i]
			l.consumed += int64(i + 1 - l.start)
			l.start = i + 1
			return l.finish(line)
		}
		scanned = l.end - l.start
		if scanned > l.max+8 { // slack for a byte order mark and a "\r"
			return l.skipLong()
		}
		if l.eof {
			if l.err != nil {
				return nil, l.no, false, l.err
			}
			if l.start == l.end {
				return nil, l.no, false, io.EOF
			}
			line = l.buf[l.start:l.end]
			l.consumed += int64(l.end - l.start)
			l.start = l.end
			return l.finish(line)
		}
		l.fill()
	}
}

func (l *lineReader) finish(line []byte) ([]byte, int64, bool, error) {
	l.no++
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if l.no == 1 {
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a byte order mark
	}
	if len(line) > l.max {
		return nil, l.no, true, nil
	}
	return line, l.no, false, nil
}

// skipLong discards the rest of a line longer than max.
func (l *lineReader) skipLong() ([]byte, int64, bool, error) {
	for {
		if i := bytes.IndexByte(l.buf[l.start:l.end], '\n'); i >= 0 {
			l.consumed += int64(i + 1)
			l.start += i + 1
			break
		}
		l.consumed += int64(l.end - l.start)
		l.start = l.end
		if l.eof {
			break
		}
		l.fill()
	}
	l.no++
	return nil, l.no, true, nil
}

// fill reads more input into a fresh block that starts with the unread
// rest of the current one.
func (l *lineReader) fill() {
	rest := l.end - l.start
	size := max(l.block, 2*rest, 2*l.max)
	nb := make([]byte, size)
	copy(nb, l.buf[l.start:l.end])
	l.buf, l.start, l.end = nb, 0, rest
	for l.end < len(l.buf) {
		n, err := l.r.Read(l.buf[l.end:])
		l.end += n
		if err != nil {
			l.eof = true
			if !errors.Is(err, io.EOF) {
				l.err = err
			}
			return
		}
		if n > 0 && bytes.IndexByte(l.buf[l.end-n:l.end], '\n') >= 0 {
			return
		}
	}
}

// blank reports whether a line holds only JSON white space.
func blank(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}
