// Package groupwatch watches one consumer-group client of franz-go: it logs
// the group's state changes that the client otherwise keeps to itself
// (joining, waiting for a rebalance, assignments, revocations, lost
// partitions, failed or slow JoinGroup, SyncGroup and Heartbeat requests),
// and it tells whether the cluster is answering, for readiness.
//
// It sees the client through kgo hooks only, so it logs no record, key or
// value: topics, partition numbers, durations and client errors. The
// processor and the sink each attach one Watch to their group client
// ([Watch.Opts]) and call [Watch.Assigned], [Watch.Revoked] and
// [Watch.Lost] from their rebalance callbacks; what it decides goes to
// their /readyz ([Watch.Joined], [Watch.Reachable]) and to the logs.
package groupwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/plugin/kslog"
)

// Config configures a Watch. Zero fields take the documented defaults.
type Config struct {
	// Logger receives the group's state changes (info and warn) and the
	// client's own warnings and errors. Default discard.
	Logger *slog.Logger
	// Slow is how long a JoinGroup, SyncGroup or Heartbeat may be
	// outstanding before it is logged, and then again each time the wait
	// doubles. Default 5s.
	Slow time.Duration
	// Unreachable is how long the cluster may go without answering any
	// request before [Watch.Reachable] reports false. Default 10s.
	Unreachable time.Duration
	// Now is the clock. Default time.Now; it must move with the wall
	// clock, so a component's simulated clock is no choice.
	Now func() time.Time
}

// Watch implements the kgo hooks it needs; see the package documentation.
type Watch struct {
	cfg Config

	mu      sync.Mutex
	lastOK  time.Time             // a response was read
	failErr error                 // the latest dial, write or read failure
	down    bool                  // logged as unreachable
	pending map[int16]outstanding // group requests written, not yet answered
	joined  bool                  // an assignment arrived since the session began
	owned   map[int32]bool
}

type outstanding struct {
	since  time.Time
	logged time.Duration // the wait last logged
}

// New returns a Watch; attach it with Opts and start Run.
func New(cfg Config) *Watch {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Slow <= 0 {
		cfg.Slow = 5 * time.Second
	}
	if cfg.Unreachable <= 0 {
		cfg.Unreachable = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	now := cfg.Now()
	return &Watch{cfg: cfg, lastOK: now, pending: map[int16]outstanding{}, owned: map[int32]bool{}}
}

// Opts returns the client options that attach w: its hooks, and the
// client's own log lines at warn and error through kslog (its info lines
// include one per transaction, too many for a processor's log). Put them
// before options of the caller's own, so that a kgo.WithLogger there wins.
func (w *Watch) Opts() []kgo.Opt {
	return []kgo.Opt{kgo.WithHooks(w), kgo.WithLogger(kslog.New(slog.New(warnOnly{w.cfg.Logger.Handler()})))}
}

// warnOnly passes on warnings and errors only.
type warnOnly struct{ slog.Handler }

func (h warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}
func (h warnOnly) WithAttrs(as []slog.Attr) slog.Handler { return warnOnly{h.Handler.WithAttrs(as)} }
func (h warnOnly) WithGroup(n string) slog.Handler       { return warnOnly{h.Handler.WithGroup(n)} }

// Run logs group requests that wait long and the cluster going away and
// coming back, until ctx ends.
func (w *Watch) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			w.check()
		}
	}
}

func (w *Watch) check() {
	now := w.cfg.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, key := range slices.Sorted(maps.Keys(w.pending)) {
		o := w.pending[key]
		waited := now.Sub(o.since)
		next := w.cfg.Slow
		if o.logged > 0 {
			next = 2 * o.logged
		}
		if waited < next {
			continue
		}
		o.logged = next
		w.pending[key] = o
		if key == joinKey {
			// The coordinator answers a JoinGroup once every member has
			// rejoined, or once the rebalance timeout has passed for those
			// that have not (dead members, in the embedded broker also
			// members killed while they were joining).
			w.cfg.Logger.Warn("still waiting for the group to rebalance", "request", name(key), "waited", waited.Round(time.Second).String())
		} else {
			w.cfg.Logger.Warn("group request unanswered", "request", name(key), "waited", waited.Round(time.Second).String())
		}
	}
	if !w.down && w.unreachable(now) {
		w.down = true
		w.cfg.Logger.Warn("kafka unreachable", "no_answer_for", now.Sub(w.lastOK).Round(time.Second).String(), "last_err", w.failErr)
	}
}

func (w *Watch) unreachable(now time.Time) bool {
	if _, ok := w.pending[joinKey]; ok {
		return false // the coordinator holds a join for as long as a rebalance takes
	}
	if _, ok := w.pending[syncKey]; ok {
		return false
	}
	return now.Sub(w.lastOK) >= w.cfg.Unreachable
}

// Reachable reports false once the cluster has answered no request for
// Config.Unreachable: a member heartbeats every few seconds and fetches
// return within their max wait, so a healthy client hears from it more
// often than that. A JoinGroup or SyncGroup the coordinator holds through
// a long rebalance is no silence.
func (w *Watch) Reachable() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.unreachable(w.cfg.Now())
}

// Joined reports whether an assignment, even an empty one, arrived in the
// current group session: false before the first one and after partitions
// are lost, until the next.
func (w *Watch) Joined() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.joined
}

const (
	joinKey      = int16(kmsg.JoinGroup)
	syncKey      = int16(kmsg.SyncGroup)
	heartbeatKey = int16(kmsg.Heartbeat)
)

func group(key int16) bool { return key == joinKey || key == syncKey || key == heartbeatKey }

func name(key int16) string { return kmsg.NameForKey(key) }

func (w *Watch) ok(now time.Time) {
	if w.down {
		w.down = false
		w.cfg.Logger.Info("kafka reachable again", "no_answer_for", now.Sub(w.lastOK).Round(time.Second).String())
	}
	w.lastOK = now
}

func (w *Watch) fail(err error) { w.failErr = err }

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (w *Watch) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail(err)
}

// OnBrokerWrite implements kgo.HookBrokerWrite: a group request written
// starts its wait.
func (w *Watch) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil || (key != joinKey && key != syncKey) {
		return // failures arrive in OnBrokerE2E
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending[key] = outstanding{since: w.cfg.Now()}
	if key == joinKey {
		w.cfg.Logger.Info("joining group")
	}
}

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (w *Watch) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	now := w.cfg.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.pending, key)
	err := e2e.Err()
	if err != nil {
		w.fail(err)
		if group(key) {
			w.cfg.Logger.Warn("group request failed", "request", name(key), "after", e2e.DurationE2E().Round(time.Millisecond).String(), "err", err)
		}
		return
	}
	w.ok(now)
	if d := e2e.DurationE2E(); group(key) && d >= w.cfg.Slow {
		w.cfg.Logger.Warn("group request answered slowly", "request", name(key), "after", d.Round(time.Millisecond).String())
	}
}

// OnGroupManageError implements kgo.HookGroupManageError: the client left
// its group session (its partitions are lost) and rejoins by itself.
func (w *Watch) OnGroupManageError(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.joined = false
	w.cfg.Logger.Warn("group session failed; rejoining", "err", err)
}

// Assigned logs partitions received in a rebalance (parts may be empty: a
// member with nothing new, or more members than partitions) and marks the
// session joined.
func (w *Watch) Assigned(parts []int32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.joined = true
	for _, p := range parts {
		w.owned[p] = true
	}
	w.cfg.Logger.Info("partitions assigned", "partitions", sorted(parts), "count", len(parts), "owned", w.ownedList())
}

// Revoked logs partitions given up in a rebalance.
func (w *Watch) Revoked(parts []int32) {
	if len(parts) == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range parts {
		delete(w.owned, p)
	}
	w.cfg.Logger.Info("partitions revoked", "partitions", sorted(parts), "count", len(parts), "owned", w.ownedList())
}

// Lost logs partitions lost with the group session (a session timeout, a
// fenced instance, the cluster unreachable): the member is no longer
// joined until its next assignment.
func (w *Watch) Lost(parts []int32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.joined = false
	clear(w.owned)
	w.cfg.Logger.Warn("partitions lost with the group session", "partitions", sorted(parts), "count", len(parts))
}

func (w *Watch) ownedList() []int32 {
	out := make([]int32, 0, len(w.owned))
	for p := range w.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func sorted(parts []int32) []int32 {
	out := slices.Clone(parts)
	slices.Sort(out)
	if out == nil {
		out = []int32{}
	}
	return out
}

// Err returns why the member cannot be ready as far as the group goes:
// the cluster unreachable, or no assignment in the current session; nil
// otherwise.
func (w *Watch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.cfg.Now()
	switch {
	case w.unreachable(now) && w.failErr != nil:
		return fmt.Errorf("kafka unreachable: no answer for %s: %w", now.Sub(w.lastOK).Round(time.Second), w.failErr)
	case w.unreachable(now):
		return fmt.Errorf("kafka unreachable: no answer for %s", now.Sub(w.lastOK).Round(time.Second))
	case !w.joined:
		return errNotJoined
	}
	return nil
}

var errNotJoined = errors.New("no partition assignment yet: joining the group")
