package processor

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TimedRecord is an event record to play at its event time.
type TimedRecord struct {
	Time       time.Time
	Key, Value []byte
}

// Simulation plays a clickstream through live processors that share a
// ManualClock, moving the clock in step with the events: before the clock
// passes a time, every event up to that time has been produced and taken in
// by a processor. The live driver then applies events and fires timers in
// exactly the order a replay of the same events does, so their send-commands
// are the same bytes. `microtrigger run` shows its sample this way; the tests
// check that invariant with it.
type Simulation struct {
	Processors []*Processor
	Clock      *ManualClock
	// Producer writes to the events topic (any client: the records are
	// keyed, and Kafka's default partitioner places them).
	Producer *kgo.Client
	Topic    string
	// Chunk is how many events are produced per clock step. Default 1000.
	Chunk int
}

// Play produces recs in time order (stable for equal times) and moves the
// clock along; it returns once every processor's watermark has reached the
// last event's time.
func (s *Simulation) Play(ctx context.Context, recs []TimedRecord) error {
	if s.Chunk <= 0 {
		s.Chunk = 1000
	}
	sorted := append([]TimedRecord(nil), recs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Time.Before(sorted[j].Time) })
	for i := 0; i < len(sorted); {
		j := min(i+s.Chunk, len(sorted))
		for j < len(sorted) && sorted[j].Time.Equal(sorted[j-1].Time) {
			j++
		}
		batch := make([]*kgo.Record, 0, j-i)
		for _, r := range sorted[i:j] {
			batch = append(batch, &kgo.Record{Topic: s.Topic, Key: r.Key, Value: r.Value, Timestamp: r.Time})
		}
		if err := s.Producer.ProduceSync(ctx, batch...).FirstErr(); err != nil {
			return fmt.Errorf("produce events: %w", err)
		}
		if err := s.AwaitConsumed(ctx); err != nil {
			return err
		}
		if err := s.Advance(ctx, sorted[j-1].Time); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// AwaitConsumed returns once the processors have committed every record now
// in the events topic, including those they re-routed.
func (s *Simulation) AwaitConsumed(ctx context.Context) error {
	adm := kadm.NewClient(s.Producer)
	for {
		ends, err := adm.ListEndOffsets(ctx, s.Topic)
		if err != nil {
			return fmt.Errorf("list end offsets: %w", err)
		}
		want := map[int32]int64{}
		ends.Each(func(o kadm.ListedOffset) { want[o.Partition] = o.Offset })
		if err := s.await(ctx, func(prog map[int32]Progress) bool {
			for part, end := range want {
				if pr, ok := prog[part]; end > 0 && (!ok || pr.Committed < end) {
					return false
				}
			}
			return true
		}); err != nil {
			return err
		}
		again, err := adm.ListEndOffsets(ctx, s.Topic)
		if err != nil {
			return fmt.Errorf("list end offsets: %w", err)
		}
		same := true
		again.Each(func(o kadm.ListedOffset) { same = same && want[o.Partition] == o.Offset })
		if same {
			return nil
		}
	}
}

// Advance moves the clock to t and returns once every partition's
// watermark has followed.
func (s *Simulation) Advance(ctx context.Context, t time.Time) error {
	s.Clock.Set(t)
	return s.await(ctx, func(prog map[int32]Progress) bool {
		for _, pr := range prog {
			if pr.Watermark.Before(t.Add(-s.grace())) {
				return false
			}
		}
		return true
	})
}

func (s *Simulation) grace() time.Duration {
	if len(s.Processors) == 0 {
		return 0
	}
	return s.Processors[0].Grace()
}

// await waits until ok holds for the merged progress of all processors,
// re-checking whenever one of them reports progress.
func (s *Simulation) await(ctx context.Context, ok func(map[int32]Progress) bool) error {
	for {
		chans := make([]<-chan struct{}, len(s.Processors))
		merged := map[int32]Progress{}
		for i, p := range s.Processors {
			chans[i] = p.Changed()
			for k, v := range p.Progress() {
				merged[k] = v
			}
		}
		if ok(merged) {
			return nil
		}
		if err := waitAny(ctx, chans); err != nil {
			return err
		}
	}
}

func waitAny(ctx context.Context, chans []<-chan struct{}) error {
	if len(chans) == 1 {
		select {
		case <-chans[0]:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	done := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	for _, c := range chans {
		go func(c <-chan struct{}) {
			select {
			case <-c:
				select {
				case done <- struct{}{}:
				case <-stop:
				}
			case <-stop:
			}
		}(c)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
