// Package kafkatest holds test helpers shared by the processor and sink
// tests: an embedded kfake cluster on loopback with microtrigger's topics
// (also one a test can stop and restart on its port and data directory, for
// broker outages), a network a test can cut (a killed process), addresses
// of brokers that refuse connections or never answer, and helpers that
// produce records and await records or a condition. Production code never
// imports it.
package kafkatest

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/broker"
)

// Cluster starts an embedded broker on a free loopback port with the default
// topics (partitions each) and closes it when the test ends. The options it
// returns connect to it.
func Cluster(t testing.TB, partitions int32) (*kfake.Cluster, []kgo.Opt) {
	t.Helper()
	c, err := broker.Start(broker.Options{Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, broker.ClientOpts(c)
}

// Client returns a client closed when the test ends.
func Client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Produce produces records synchronously and fails the test on error.
func Produce(t testing.TB, cl *kgo.Client, rs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// Await consumes topic from the start with read_committed isolation until n
// records have arrived, and returns them. It fails the test if they do not
// arrive within timeout; it returns as soon as they do.
func Await(t testing.TB, seeds []kgo.Opt, topic string, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	opts := append([]kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	}, seeds...)
	cl := Client(t, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("await %d records on %s: got %d before timeout", n, topic, len(out))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("consume %s: %v", topic, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

// ReadAll returns every committed record of topic up to its end offsets at
// the time of the call, without waiting for more.
func ReadAll(t testing.TB, seeds []kgo.Opt, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := broker.ReadAll(ctx, seeds, topic)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Network is a dialer a test can cut: after Kill, every connection it made
// is closed and new ones are refused, as if the process had died, while the
// client itself is never closed (it sends no LeaveGroup, ends no
// transaction).
type Network struct {
	mu    sync.Mutex
	dead  bool
	conns []net.Conn
}

// Opt makes a client dial through n.
func (n *Network) Opt() kgo.Opt { return kgo.Dialer(n.dial) }

func (n *Network) dial(ctx context.Context, network, host string) (net.Conn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dead {
		return nil, errors.New("network cut by the test")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	n.conns = append(n.conns, c)
	return c, nil
}

// Kill cuts the network.
func (n *Network) Kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dead = true
	for _, c := range n.conns {
		c.Close()
	}
	n.conns = nil
}

// Broker is an embedded broker a test can stop and start again on the same
// port and data directory, as an operator restarts a Kafka broker: clients
// keep their seed address, and records, group offsets and producer ids
// survive the restart.
type Broker struct {
	t    testing.TB
	opts broker.Options
	mu   sync.Mutex
	c    *kfake.Cluster
}

// Restartable starts a Broker with the default topics (partitions each),
// persisted in a temporary directory, and closes it when the test ends. The
// options it returns connect to it across restarts.
func Restartable(t testing.TB, partitions int32) (*Broker, []kgo.Opt) {
	t.Helper()
	b := &Broker{t: t, opts: broker.Options{Partitions: partitions, DataDir: t.TempDir()}}
	b.Start()
	b.opts.Port = broker.PortOf(broker.Addr(b.c)) // the next start takes the same port
	t.Cleanup(b.Stop)
	return b, []kgo.Opt{kgo.SeedBrokers(broker.Addr(b.c)), kgo.FetchMaxWait(100 * time.Millisecond)}
}

// Start starts the broker if it is stopped.
func (b *Broker) Start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil {
		return
	}
	c, err := broker.Start(b.opts)
	if err != nil {
		b.t.Fatalf("start the embedded broker again: %v", err)
	}
	b.c = c
}

// Stop stops the broker: every connection closes and new ones are refused
// until Start.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil {
		b.c.Close()
		b.c = nil
	}
}

// Eventually polls cond every 10ms until it holds, and fails the test if it
// does not within timeout. It is for states that have no event to await
// (readiness, a gauge); records and offsets are awaited directly.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s: not within %s", what, timeout)
		}
	}
}

// ClosedPort returns a loopback address nothing listens on: a client's
// dial is refused at once, as with a broker that is down.
func ClosedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Silent is a loopback address that accepts connections and never answers,
// as a broker behind a network that drops its replies: a client waits
// until its own deadline. Connected receives once per connection accepted;
// everything closes when the test ends.
type Silent struct {
	Addr      string
	Connected <-chan struct{}
}

// SilentBroker starts a Silent listener.
func SilentBroker(t testing.TB) Silent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{}, 64)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return Silent{Addr: ln.Addr().String(), Connected: connected}
}
