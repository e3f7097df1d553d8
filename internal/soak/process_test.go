package soak

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buffer is a log sink shared by a process and the test.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// life is one run of a process: the crash point armed in it (empty: none)
// and whether its volume is wiped before it starts.
type life struct {
	crashAt string
	wipe    bool
	after   time.Duration // how long it stays dead before this life starts
}

// death is how a life ended.
type death struct {
	name    string
	life    int
	crashAt string
	at      time.Time
	killed  bool // by SIGKILL (a crash point, or the harness)
	err     error
}

// supervised is a process restarted, as Kubernetes restarts a pod, after
// each death, through its list of lives; once they are spent it stays
// dead. Every life logs into the same buffer.
type supervised struct {
	t     *testing.T
	name  string
	bin   string
	args  []string
	env   []string
	dir   string // its volume (wiped when a life asks)
	logs  *buffer
	lives []life

	mu      sync.Mutex
	cmd     *exec.Cmd
	life    int
	stopped bool
	deaths  chan death
	done    chan struct{}
}

func supervise(t *testing.T, name, bin, dir string, args, env []string, lives ...life) *supervised {
	t.Helper()
	if len(lives) == 0 {
		lives = []life{{}}
	}
	s := &supervised{t: t, name: name, bin: bin, args: args, env: env, dir: dir, logs: &buffer{}, lives: lives,
		deaths: make(chan death, 64), done: make(chan struct{})}
	s.start()
	go s.watch()
	t.Cleanup(s.stop)
	return s
}

func (s *supervised) start() {
	l := s.lives[s.life]
	if l.wipe && s.dir != "" {
		if err := os.RemoveAll(s.dir); err != nil {
			s.t.Errorf("%s: wipe its volume: %v", s.name, err)
		}
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append(append(os.Environ(), s.env...), "MICROTRIGGER_CRASH_AT="+l.crashAt)
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	fmt.Fprintf(s.logs, "--- %s life %d (crash point %q, wiped %v) at %s\n", s.name, s.life, l.crashAt, l.wipe, time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		s.t.Errorf("start %s: %v", s.name, err)
		return
	}
	s.cmd = cmd
}

// watch waits for each life to end and starts the next.
func (s *supervised) watch() {
	defer close(s.done)
	for {
		s.mu.Lock()
		cmd := s.cmd
		s.mu.Unlock()
		if cmd == nil {
			return
		}
		err := cmd.Wait()
		s.mu.Lock()
		d := death{name: s.name, life: s.life, crashAt: s.lives[s.life].crashAt, at: time.Now(), err: err}
		s.mu.Unlock()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			d.killed = true
		}
		s.mu.Lock()
		stopped := s.stopped
		s.cmd = nil
		next := !stopped && s.life+1 < len(s.lives)
		if !stopped {
			s.deaths <- d
		}
		var wait time.Duration
		if next {
			s.life++
			wait = s.lives[s.life].after
		}
		s.mu.Unlock()
		if next {
			time.Sleep(wait) // an outage's length, not something to await
			s.mu.Lock()
			if !s.stopped {
				s.start()
			}
			s.mu.Unlock()
		}
		if stopped {
			return
		}
	}
}

// signal signals the current life (the next starts when it ends, if any).
func (s *supervised) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig)
	}
}

// again gives the process one more life.
func (s *supervised) again(l life) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lives = append(s.lives, l)
}

// awaitDeath returns the next death, failing the test after timeout.
func (s *supervised) awaitDeath(timeout time.Duration, what string) death {
	s.t.Helper()
	select {
	case d := <-s.deaths:
		return d
	case <-time.After(timeout):
		s.t.Fatalf("%s: %s did not happen within %s", s.name, what, timeout)
		return death{}
	}
}

// stop ends the supervision and the current life with SIGTERM.
func (s *supervised) stop() {
	s.mu.Lock()
	s.stopped = true
	cmd := s.cmd
	s.mu.Unlock()
	if cmd != nil {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			cmd.Process.Signal(syscall.SIGKILL)
			<-s.done
		}
	}
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// awaitListening waits until addr accepts connections.
func awaitListening(t *testing.T, addr string, timeout time.Duration, logs *buffer) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after %s:\n%s", addr, timeout, logs)
		}
		time.Sleep(20 * time.Millisecond) // polling a port: there is nothing to await
	}
}

// buildBinary builds microtrigger with the faults tag into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	bin := filepath.Join(dir, "microtrigger")
	build := exec.Command(goTool, "build", "-tags", "faults", "-o", bin, ".")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags faults: %v\n%s", err, out)
	}
	return bin
}

// leaks returns the lines of logs holding one of the sentinels.
func leaks(logs string, sentinels ...string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		for _, s := range sentinels {
			if strings.Contains(line, s) {
				out = append(out, line)
				break
			}
		}
	}
	return out
}

// tail returns the last n lines of what s logged, for a failure message.
func (s *supervised) tail(n int) string {
	lines := strings.Split(strings.TrimRight(s.logs.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
