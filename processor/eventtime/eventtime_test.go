package eventtime_test

import (
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/processor/eventtime"
)

// TestNextInterleaves checks the order Next hands inputs out: events and
// timers by time, a timer before an event at the same instant, events of
// equal time by arrival, nothing after the watermark, and a moved or
// removed timer never coming back from where it was.
func TestNextInterleaves(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	key := func(b byte) eventtime.Key { return eventtime.Key{b} }
	var buf eventtime.Buffer
	var tm eventtime.Timers
	buf.Push(eventtime.Item{Time: at(5), Seq: 2, Value: "e5b"})
	buf.Push(eventtime.Item{Time: at(5), Seq: 1, Value: "e5a"})
	buf.Push(eventtime.Item{Time: at(1), Seq: 3, Value: "e1"})
	buf.Push(eventtime.Item{Time: at(20), Seq: 4, Value: "e20"})
	tm.Set(key(1), time.Time{}, at(5))
	tm.Set(key(2), time.Time{}, at(3))
	tm.Set(key(3), time.Time{}, at(4))
	tm.Set(key(3), at(4), at(7)) // moved
	tm.Set(key(4), time.Time{}, at(6))
	tm.Set(key(4), at(6), time.Time{}) // removed
	if tm.Len() != 3 {
		t.Fatalf("%d timers, want 3", tm.Len())
	}
	var got []string
	for {
		kind, it, due, k := eventtime.Next(at(10), &buf, &tm)
		switch kind {
		case eventtime.Event:
			got = append(got, it.Value.(string))
			continue
		case eventtime.Timer:
			got = append(got, "t"+string(rune('0'+k[0]))+"@"+due.Format("04"))
			tm.Set(k, due, time.Time{})
			continue
		}
		break
	}
	want := []string{"e1", "t2@03", "t1@05", "e5a", "e5b", "t3@07"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if buf.Len() != 1 || tm.Len() != 0 {
		t.Fatalf("left %d events and %d timers, want the event after the watermark only", buf.Len(), tm.Len())
	}
}
