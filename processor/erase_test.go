package processor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/processor/state"
	"github.com/microtrigger/microtrigger/processor/store"
	"github.com/microtrigger/microtrigger/schema"
)

// TestErasure sends a delete request for a user with a pending cart timer:
// nothing is ever sent to them, later events are dropped, and no byte of
// their id or address remains in the stores' files or in the changelog's
// latest values.
func TestErasure(t *testing.T) {
	const user, email = "user-ada-4242", "ada.lovelace@example.com"
	_, seeds := kafkatest.Cluster(t, 4)
	clock := processor.NewManualClock(t0.Add(-time.Hour))
	dir := t.TempDir()
	in := start(t, testConfig(t, seeds, clock, dir, "erase-test"))
	ctx := context.Background()
	sim := &processor.Simulation{Processors: []*processor.Processor{in.p}, Clock: clock, Producer: kafkatest.Client(t, seeds...), Topic: schema.TopicEvents}

	if err := sim.Play(ctx, []processor.TimedRecord{
		identify(t, user, email), identify(t, "bystander", "by@example.com"),
		track(t, 0, user, "Product Added", map[string]any{"product_id": "p1", "price": 120}),
		track(t, 0, "bystander", "Product Added", map[string]any{"product_id": "p1", "price": 120}),
		page(t, 5*time.Minute, user, "/pricing"),
	}); err != nil {
		t.Fatal(err)
	}
	// A restart flushes the stores: the user's state is in files on disk
	// before the erasure arrives.
	in.stop(t)
	in = start(t, testConfig(t, seeds, clock, dir, "erase-test"))
	sim.Processors = []*processor.Processor{in.p}

	del, _ := json.Marshal(map[string]any{"type": "delete", "userId": user, "messageId": "erase-1", "timestamp": schema.FormatTime(t0.Add(10 * time.Minute))})
	if err := sim.Play(ctx, []processor.TimedRecord{
		{Time: t0.Add(10 * time.Minute), Key: []byte(user), Value: del},
		// After the erasure: a new identify and a revisit must change nothing.
		ev(t, 20*time.Minute, user, map[string]any{"type": "identify", "traits": map[string]any{"email": email, "email_opt_in": true}}),
		page(t, 21*time.Minute, user, "/pricing"),
		page(t, 24*time.Minute, user, "/pricing"),
	}); err != nil {
		t.Fatal(err)
	}
	if err := sim.Advance(ctx, t0.Add(3*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := commandsFor(t, seeds, user); len(got) != 0 {
		t.Fatalf("%d commands for the erased user", len(got))
	}
	if got := commandsFor(t, seeds, "bystander"); len(got) == 0 {
		t.Fatal("the other user's cart sent nothing: the test would prove nothing")
	}
	in.stop(t)

	secrets := [][]byte{[]byte(user), []byte(email)}
	// Logical content of every partition store.
	for p := 0; p < 4; p++ {
		db, err := store.Open(filepath.Join(dir, "p-"+string(rune('0'+p))), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.All(func(k, v []byte) error {
			for _, s := range secrets {
				if bytes.Contains(k, s) || bytes.Contains(v, s) {
					t.Errorf("partition %d store key %x holds %q", p, k, s)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		v, err := db.User(schema.UserHash(user))
		if err != nil {
			t.Fatal(err)
		}
		if v != nil && !state.IsErasedMarker(v) {
			t.Errorf("partition %d holds a state for the erased user", p)
		}
		db.Close()
	}
	// The bytes of the files themselves: the old values were rewritten away.
	if err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("file %s holds %q", path, s)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The changelog's latest value per key.
	latest := map[string][]byte{}
	for _, r := range kafkatest.ReadAll(t, seeds, schema.TopicChangelog) {
		latest[string(r.Key)] = r.Value
	}
	marker := false
	for k, v := range latest {
		for _, s := range secrets {
			if bytes.Contains([]byte(k), s) || bytes.Contains(v, s) {
				t.Errorf("changelog key %x: latest value holds %q", k, s)
			}
		}
		if k == string(store.UserKey(schema.UserHash(user))) && state.IsErasedMarker(v) {
			marker = true
		}
	}
	if !marker {
		t.Error("the changelog holds no erasure marker for the user")
	}
}

// TestErasureReachesHistory reads every record of the changelog, not only
// the latest per key. The processor snapshots with every batch, so the
// user's id and address are in many records before the erasure; once the
// broker has compacted the changelog (which max.compaction.lag.ms bounds
// in time), no record holds either: every key that ever held them was
// overwritten by the erasure marker or deleted.
func TestErasureReachesHistory(t *testing.T) {
	const user, email = "user-grace-1906", "grace.hopper@example.com"
	cluster, seeds := kafkatest.Cluster(t, 1)
	clock := processor.NewManualClock(t0.Add(-time.Hour))
	cfg := testConfig(t, seeds, clock, t.TempDir(), "erase-history")
	cfg.SnapshotUsers = 1
	in := start(t, cfg)
	ctx := context.Background()
	sim := &processor.Simulation{Processors: []*processor.Processor{in.p}, Clock: clock, Producer: kafkatest.Client(t, seeds...), Topic: schema.TopicEvents, Chunk: 1}
	del, _ := json.Marshal(map[string]any{"type": "delete", "userId": user, "messageId": "erase-1", "timestamp": schema.FormatTime(t0.Add(time.Hour))})
	if err := sim.Play(ctx, []processor.TimedRecord{
		identify(t, user, email),
		track(t, 0, user, "Product Added", map[string]any{"product_id": "p1", "price": 120}),
		page(t, 5*time.Minute, user, "/pricing"),
		page(t, 30*time.Minute, user, "/features"),
		{Time: t0.Add(time.Hour), Key: []byte(user), Value: del},
		page(t, 2*time.Hour, user, "/pricing"),
	}); err != nil {
		t.Fatal(err)
	}
	if err := sim.Advance(ctx, t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	in.stop(t)

	holding := func() int {
		n := 0
		for _, r := range kafkatest.ReadAll(t, seeds, schema.TopicChangelog) {
			if bytes.Contains(r.Value, []byte(user)) || bytes.Contains(r.Value, []byte(email)) {
				n++
			}
		}
		return n
	}
	before := holding()
	if before == 0 {
		t.Fatal("no changelog record held the user before compaction: the test would prove nothing")
	}
	cluster.Compact()
	if after := holding(); after != 0 {
		t.Fatalf("after compaction %d changelog records still hold the erased user (%d before)", after, before)
	}
	t.Logf("%d changelog records held the user before compaction, none after", before)
}
