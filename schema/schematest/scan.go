package schematest

import (
	"bytes"
	"sync"
)

// Leaked reports whether out holds the sentinel, or any 8 bytes of it in a
// row, in any case: a message that quotes a clipped prefix of the record
// leaks too.
func Leaked(out []byte, sentinel string) bool {
	up, s := bytes.ToUpper(out), bytes.ToUpper([]byte(sentinel))
	if len(s) <= 8 {
		return bytes.Contains(up, s)
	}
	for i := 0; i+8 <= len(s); i++ {
		if bytes.Contains(up, s[i:i+8]) {
			return true
		}
	}
	return false
}

// Buffer is a bytes.Buffer safe for concurrent writers, such as a logger
// shared by goroutines.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of what was written.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
