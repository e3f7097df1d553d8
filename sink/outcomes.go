package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/sink/webhook"
)

// outcomesLookback is how far before the oldest command waiting for an
// outcome a partition of sink-outcomes is read from on assignment: its
// records carry the webhook's clock, which may be behind the sink's.
const outcomesLookback = 15 * time.Minute

// maxEvidence bounds the evidence read ahead of the delivery loop; past
// it reading pauses until the loop takes what was read.
const maxEvidence = 10_000

// evidence is an outcome proving that SendGrid accepted a command.
type evidence struct {
	partition int32
	command   string
	event     string
	at        time.Time
}

// outcomes reads sink-outcomes, the partitions the sink owns, and hands
// the evidence in it to the delivery loop, which alone touches the
// ledger. A partition is live once it has been read up to the end offset
// listed when it was assigned: only then may the loop conclude from an
// absence of evidence.
type outcomes struct {
	topic string
	cl    *kgo.Client

	mu      sync.Mutex
	owned   map[int32]bool
	target  map[int32]int64 // owned partitions catching up: the offset to reach
	read    []evidence
	wake    chan struct{} // evidence was read
	drained chan struct{} // the loop took what was read
}

func newOutcomes(c *Config) (*outcomes, error) {
	cl, err := kgo.NewClient(c.Kafka...)
	if err != nil {
		return nil, fmt.Errorf("sink: %s reader: %w", c.Topics.Outcomes, err)
	}
	return &outcomes{
		topic: c.Topics.Outcomes, cl: cl,
		owned: map[int32]bool{}, target: map[int32]int64{},
		wake: make(chan struct{}, 1), drained: make(chan struct{}, 1),
	}, nil
}

func (o *outcomes) close() { o.cl.Close() }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run reads until ctx ends (then it returns nil) or reading fails in a
// way no retry mends; other failures (the broker away) are logged, and the
// client goes on by itself.
func (o *outcomes) run(ctx context.Context, log *slog.Logger) error {
	for {
		fs := o.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("sink: read %s partition %d: %w", o.topic, p, err))
		})
		if ferr != nil {
			if fatal(ferr) {
				return ferr
			}
			log.Warn("reading SendGrid's outcomes", "err", ferr)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		o.mu.Lock()
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if !o.owned[fp.Partition] || len(fp.Records) == 0 {
				return
			}
			for _, r := range fp.Records {
				out, err := webhook.UnmarshalOutcome(r.Value)
				if err != nil || out.CommandID == "" {
					continue // not about a command of ours
				}
				o.read = append(o.read, evidence{partition: fp.Partition, command: out.CommandID, event: out.Event, at: out.At})
			}
			if t, ok := o.target[fp.Partition]; ok && fp.Records[len(fp.Records)-1].Offset+1 >= t {
				delete(o.target, fp.Partition)
			}
		})
		full := len(o.read) >= maxEvidence
		o.mu.Unlock()
		signal(o.wake)
		if full {
			select {
			case <-o.drained:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// assign starts reading parts from the first record written at or after
// since (all of them: one listing), and from then on.
func (o *outcomes) assign(ctx context.Context, parts []int32, since time.Time) error {
	adm := kadm.NewClient(o.cl)
	ends, err := adm.ListEndOffsets(ctx, o.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("sink: list %s end offsets: %w", o.topic, err)
	}
	starts, err := adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), o.topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fmt.Errorf("sink: list %s offsets: %w", o.topic, err)
	}
	add := map[int32]kgo.Offset{}
	o.mu.Lock()
	for _, p := range parts {
		start, ok1 := starts.Lookup(o.topic, p)
		end, ok2 := ends.Lookup(o.topic, p)
		if !ok1 || !ok2 {
			o.mu.Unlock()
			return fmt.Errorf("sink: %s has no partition %d", o.topic, p)
		}
		add[p] = kgo.NewOffset().At(start.Offset)
		o.owned[p] = true
		delete(o.target, p)
		if start.Offset < end.Offset {
			o.target[p] = end.Offset
		}
	}
	o.mu.Unlock()
	o.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: add})
	return nil
}

// revoke stops reading parts and drops what was read of them.
func (o *outcomes) revoke(parts []int32) {
	o.cl.RemoveConsumePartitions(map[string][]int32{o.topic: parts})
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range parts {
		delete(o.owned, p)
		delete(o.target, p)
	}
	kept := o.read[:0]
	for _, e := range o.read {
		if o.owned[e.partition] {
			kept = append(kept, e)
		}
	}
	o.read = kept
}

// take returns the evidence read so far and the partitions that were live
// when it was read: no evidence of theirs written before the moment of
// assignment is still unread.
func (o *outcomes) take() ([]evidence, map[int32]bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	read := o.read
	o.read = nil
	live := make(map[int32]bool, len(o.owned))
	for p := range o.owned {
		if _, catching := o.target[p]; !catching {
			live[p] = true
		}
	}
	signal(o.drained)
	return read, live
}
