package backtest

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/schema"
)

// topicSource reads a time range of a topic: every partition from the
// offset of from to the offset of to, both found by record timestamp, with
// read_committed isolation, merged by event time. It uses no consumer
// group, commits nothing and produces nothing.
type topicSource struct {
	topic    string
	kafka    []kgo.Opt
	from, to time.Time
	// maxSkew bounds event times against receivedAt or the record's
	// timestamp.
	maxSkew time.Duration
	// maxQueue is how many decoded events a partition may have waiting to
	// be merged before it is paused. Default 20000.
	maxQueue int
}

func (s *topicSource) kind() string { return "topic" }
func (s *topicSource) name() string { return s.topic }

// span is the offsets [start, end) of one partition to read.
type span struct {
	partition  int32
	start, end int64
}

// spans lists the offsets to read, one span per partition that has any.
func (s *topicSource) spans(ctx context.Context, adm *kadm.Client) ([]span, error) {
	list := func(what string, fn func() (kadm.ListedOffsets, error)) (map[int32]int64, error) {
		l, err := fn()
		if err == nil {
			err = l.Error()
		}
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("topic %q does not exist", s.topic)
		}
		if err != nil {
			return nil, fmt.Errorf("list %s offsets of %s: %w", what, s.topic, err)
		}
		out := map[int32]int64{}
		l.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		if len(out) == 0 {
			return nil, fmt.Errorf("topic %q does not exist", s.topic)
		}
		return out, nil
	}
	starts, err := list("start", func() (kadm.ListedOffsets, error) {
		if s.from.IsZero() {
			return adm.ListStartOffsets(ctx, s.topic)
		}
		return adm.ListOffsetsAfterMilli(ctx, s.from.UnixMilli(), s.topic)
	})
	if err != nil {
		return nil, err
	}
	// The last stable offsets: never wait for an open transaction.
	ends, err := list("end", func() (kadm.ListedOffsets, error) { return adm.ListCommittedOffsets(ctx, s.topic) })
	if err != nil {
		return nil, err
	}
	if !s.to.IsZero() {
		// The first record after to ends the range (offsets at to are in).
		after, err := list("end", func() (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, s.to.UnixMilli()+1, s.topic)
		})
		if err != nil {
			return nil, err
		}
		for p, o := range after {
			if o >= 0 && o < ends[p] {
				ends[p] = o
			}
		}
	}
	var out []span
	for p, start := range starts {
		if end := ends[p]; start >= 0 && end > start {
			out = append(out, span{partition: p, start: start, end: end})
		}
	}
	return out, nil
}

// partQueue is one partition's decoded events waiting to be merged.
type partQueue struct {
	span
	items  []item
	head   int
	done   bool // read to the end of its span
	paused bool
	read   int64 // offsets consumed
}

func (q *partQueue) len() int { return len(q.items) - q.head }

func (q *partQueue) pop() item {
	it := q.items[q.head]
	q.items[q.head] = item{}
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	return it
}

// mergeHeap orders partitions by the event time of their first waiting
// event, then by partition number.
type mergeHeap []*partQueue

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	a, b := h[i].items[h[i].head].ev.Timestamp, h[j].items[h[j].head].ev.Timestamp
	if !a.Equal(b) {
		return a.Before(b)
	}
	return h[i].partition < h[j].partition
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(*partQueue)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (s *topicSource) read(ctx context.Context, out chan<- *batch) error {
	admCl, err := kgo.NewClient(s.kafka...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	spans, err := s.spans(ctx, kadm.NewClient(admCl))
	admCl.Close()
	if err != nil {
		return err
	}
	var total int64
	queues := map[int32]*partQueue{}
	offsets := map[int32]kgo.Offset{}
	for _, sp := range spans {
		total += sp.end - sp.start
		queues[sp.partition] = &partQueue{span: sp}
		offsets[sp.partition] = kgo.NewOffset().At(sp.start)
	}
	if len(spans) == 0 {
		return send(ctx, out, &batch{})
	}
	maxQueue := s.maxQueue
	if maxQueue <= 0 {
		maxQueue = 20000
	}
	opts := append(append([]kgo.Opt(nil), s.kafka...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers are returned, so a partition whose span
		// ends with one is seen to be finished.
		kgo.KeepControlRecords(),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	var (
		h       mergeHeap
		waiting = len(queues) // unfinished partitions with nothing queued
		seq     int64
		b       = &batch{items: make([]item, 0, batchSize), total: total}
	)
	pause := func(q *partQueue, on bool) {
		if q.paused == on {
			return
		}
		q.paused = on
		tp := map[string][]int32{s.topic: {q.partition}}
		if on {
			cl.PauseFetchPartitions(tp)
		} else {
			cl.ResumeFetchPartitions(tp)
		}
	}
	finish := func(q *partQueue) {
		if q.done {
			return
		}
		q.done = true
		pause(q, true)
		if q.len() == 0 {
			waiting--
		}
	}
	for waiting > 0 || h.Len() > 0 {
		if waiting > 0 {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				return err
			}
			var ferr error
			fs.EachError(func(t string, p int32, err error) {
				if ferr == nil {
					ferr = fmt.Errorf("fetch %s partition %d: %w", t, p, err)
				}
			})
			if ferr != nil {
				return ferr
			}
			fs.EachRecord(func(r *kgo.Record) {
				q := queues[r.Partition]
				if q == nil || q.done || r.Offset < q.start {
					return
				}
				if r.Offset >= q.end {
					finish(q)
					return
				}
				q.read = r.Offset + 1 - q.start
				if !r.Attrs.IsControl() {
					b.records++
					ev, err := schema.DecodeEvent(r.Value)
					if err == nil {
						err = schema.CheckArrival(&ev, r.Timestamp, s.maxSkew)
					}
					if err != nil {
						rf := refusal(err)
						p, o := r.Partition, r.Offset
						rf.Partition, rf.Offset = &p, &o
						b.refused = append(b.refused, rf)
					} else {
						if q.len() == 0 && !q.done {
							waiting--
						}
						wasEmpty := q.len() == 0
						q.items = append(q.items, item{ev: ev, raw: r.Value})
						if wasEmpty {
							heap.Push(&h, q)
						}
					}
				}
				if r.Offset >= q.end-1 {
					finish(q)
				}
				if q.len() >= maxQueue {
					pause(q, true)
				}
			})
		}
		// Merge while every unfinished partition has an event waiting:
		// none of them can still deliver an earlier one.
		for waiting == 0 && h.Len() > 0 {
			q := h[0]
			it := q.pop()
			seq++
			it.seq = seq
			b.items = append(b.items, it)
			if q.len() == 0 {
				heap.Pop(&h)
				if !q.done {
					waiting++
				}
			} else {
				heap.Fix(&h, 0)
			}
			if !q.done && q.paused && q.len() < maxQueue/2 {
				pause(q, false)
			}
			if len(b.items) >= batchSize {
				b.done = consumed(queues)
				if err := send(ctx, out, b); err != nil {
					return err
				}
				b = &batch{items: make([]item, 0, batchSize), total: total}
			}
		}
	}
	b.done = consumed(queues)
	return send(ctx, out, b)
}

func consumed(queues map[int32]*partQueue) int64 {
	var n int64
	for _, q := range queues {
		n += q.read
	}
	return n
}
