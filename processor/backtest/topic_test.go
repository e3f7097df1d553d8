package backtest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/schema"
)

// produceClickstream writes the lines of a JSONL file to topic, keyed by
// user and stamped with their event time (a refused line gets the time of
// the line before it), in one committed transaction. Then it writes
// extra, in a transaction it aborts: a read_committed reader never sees it.
func produceClickstream(t *testing.T, seeds []kgo.Opt, topic, path string, aborted ...*kgo.Record) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	var last time.Time
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		r := &kgo.Record{Topic: topic, Value: line, Timestamp: last}
		if ev, err := schema.DecodeEvent(line); err == nil {
			r.Key, r.Timestamp = []byte(ev.UserKey()), ev.Timestamp
			last = ev.Timestamp
		}
		recs = append(recs, r)
	}
	cl := kafkatest.Client(t, append(append([]kgo.Opt(nil), seeds...), kgo.TransactionalID("backtest-test"), kgo.DefaultProduceTopic(topic))...)
	ctx := context.Background()
	for i, batch := range [][]*kgo.Record{recs, aborted} {
		if len(batch) == 0 {
			continue
		}
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		commit := kgo.TryCommit
		if i == 1 {
			commit = kgo.TryAbort
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTopicEqualsFile replays the golden clickstream from a file and from
// a topic of four partitions: the send-commands and suppressions must be
// the same bytes, and so must every figure of the report but the input's.
func TestTopicEqualsFile(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 4)
	// An order that would make ben's holdout run convert, aborted.
	ghost, _ := json.Marshal(map[string]any{"messageId": "ghost-1", "type": "track", "event": "Order Completed",
		"userId": "ben", "timestamp": "2026-03-02T10:00:00Z"})
	produceClickstream(t, seeds, schema.TopicEvents, "testdata/clickstream.jsonl",
		&kgo.Record{Key: []byte("ben"), Value: ghost, Timestamp: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)})

	for _, ranged := range []bool{true, false} {
		name := "whole topic"
		if ranged {
			name = "from and to"
		}
		t.Run(name, func(t *testing.T) {
			fileOut, topicOut := t.TempDir(), t.TempDir()
			cfg := goldenConfig(t, fileOut)
			if !ranged {
				cfg.From, cfg.To = time.Time{}, time.Time{}
			}
			fromFile, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			cfg.OutDir, cfg.File, cfg.Topic, cfg.Kafka = topicOut, "", schema.TopicEvents, seeds
			fromTopic, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range goldenFiles[:2] {
				want, _ := os.ReadFile(filepath.Join(fileOut, name))
				got, err := os.ReadFile(filepath.Join(topicOut, name))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s from the topic differs from the file's (%v):\n%s", name, err, lineDiff(want, got))
				}
			}
			// The file's late event (zed's 10:30 page after an 11:00
			// event of another user) is in order in its partition, and
			// the merge by event time applies it in order.
			if l := fromTopic.Report.Run.Processing.Late; l != 0 {
				t.Errorf("%d late events from the topic, want 0", l)
			}
			for _, r := range []*Result{fromFile, fromTopic} {
				r.Report.Run.Processing.Late = 0
				r.Report.Compare.Run.Processing.Late = 0
			}
			for what, pair := range map[string][2]any{
				"figures":    {fromFile.Report.Run, fromTopic.Report.Run},
				"comparison": {fromFile.Report.Compare, fromTopic.Report.Compare},
				"conversion": {fromFile.Report.Conversion, fromTopic.Report.Conversion},
			} {
				a, _ := json.MarshalIndent(pair[0], "", " ")
				b, _ := json.MarshalIndent(pair[1], "", " ")
				if !bytes.Equal(a, b) {
					t.Errorf("report %s differ between file and topic:\n%s", what, lineDiff(a, b))
				}
			}
			in := fromTopic.Report.Input
			if in.Source != "topic" || in.Refused != 2 || in.Events != fromFile.Report.Input.Events {
				t.Errorf("topic input: %+v", in)
			}
			for _, rf := range in.Refusals {
				if rf.Partition == nil || rf.Offset == nil || rf.Line != 0 {
					t.Errorf("refusal without its partition and offset: %+v", rf)
				}
			}
			if ranged && in.Records != 55 {
				// The records before --from and after --to are not read.
				t.Errorf("read %d records, want 55", in.Records)
			}
		})
	}
}

// TestTopicMerge reads a topic through a tiny merge queue, so partitions
// are paused and resumed, and checks the merged order: by event time, and
// by offset within a partition.
func TestTopicMerge(t *testing.T) {
	_, seeds := kafkatest.Cluster(t, 3)
	const topic = schema.TopicEvents
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range 300 {
		user := []string{"a", "b", "c", "d", "e", "f", "g"}[i%7]
		// Times go up overall, with ties and small steps back.
		at := t0.Add(time.Duration(i/3)*time.Minute - time.Duration(i%2)*30*time.Second)
		v, _ := json.Marshal(map[string]any{"messageId": "m" + itoaTest(i), "type": "page", "userId": user,
			"timestamp": schema.FormatTime(at), "context": map[string]any{"page": map[string]any{"path": "/p"}}})
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(user), Value: v, Timestamp: at})
	}
	kafkatest.Produce(t, kafkatest.Client(t, seeds...), recs...)

	src := &topicSource{topic: topic, kafka: seeds, maxQueue: 2}
	out := make(chan *batch, 1000)
	if err := src.read(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	close(out)
	var items []item
	for b := range out {
		items = append(items, b.items...)
	}
	if len(items) != len(recs) {
		t.Fatalf("merged %d events, want %d", len(items), len(recs))
	}
	// Per user (one partition each), the input order is kept.
	lastOf := map[string]string{}
	for i, it := range items {
		if it.seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, it.seq)
		}
		u := it.ev.UserKey()
		if prev, ok := lastOf[u]; ok && idNum(prev) > idNum(it.ev.MessageID) {
			t.Fatalf("user %s: %s merged after %s", u, it.ev.MessageID, prev)
		}
		lastOf[u] = it.ev.MessageID
	}
}

func itoaTest(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func idNum(id string) int {
	n := 0
	for _, c := range id[1:] {
		n = n*10 + int(c-'0')
	}
	return n
}
