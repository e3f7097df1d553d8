package backtest

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sync/errgroup"

	"github.com/microtrigger/microtrigger/processor/backtest/report"
	"github.com/microtrigger/microtrigger/processor/engine"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/store"
	"github.com/microtrigger/microtrigger/processor/task"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/schema/zoneinfo"
)

// Output file names, in Config.OutDir.
const (
	CommandsFile     = "commands.jsonl"
	SuppressionsFile = "suppressions.jsonl"
	ReportJSONFile   = "report.json"
	ReportHTMLFile   = "report.html"
	CompareDir       = "compare"
)

// Result is the outcome of a backtest.
type Result struct {
	Report *report.Report
	// Files lists the files written, relative to Config.OutDir.
	Files []string
	// Records counts the records read; Elapsed is the wall time of the run.
	Records int64
	Elapsed time.Duration
}

// Run replays the input through the pack (and the compared pack) and
// writes the output files. It returns an error only when the run could
// not complete: refused records and failed rule evaluations are counted
// in the report instead.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	start := time.Now()
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var src source
	skew := cfg.Pack.Policy.MaxFutureSkew
	if cfg.File != "" {
		src = &fileSource{path: cfg.File, maxSkew: skew}
	} else {
		src = &topicSource{topic: cfg.Topic, kafka: cfg.Kafka, from: cfg.From, to: cfg.To, maxSkew: skew}
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}

	stateDir := ""
	if !cfg.InMemory {
		if stateDir, err = os.MkdirTemp(cfg.StateDir, "microtrigger-backtest-"); err != nil {
			return nil, fmt.Errorf("create state directory: %w", err)
		}
		defer os.RemoveAll(stateDir)
	}
	runs := []*run{newRun(cfg.Pack, cfg.Rules, cfg.Zones)}
	if cfg.Compare != nil {
		runs = append(runs, newRun(cfg.Compare, cfg.CompareRules, cfg.Zones))
	}
	for i, r := range runs {
		dir := ""
		if stateDir != "" {
			dir = filepath.Join(stateDir, fmt.Sprintf("pack-%d", i))
		}
		err := r.open(cfg, dir)
		defer r.close()
		if err != nil {
			return nil, err
		}
	}

	d := &dispatcher{cfg: cfg, runs: runs, conv: map[string][]time.Time{}, refusedBy: map[string]int64{}}
	g, gctx := errgroup.WithContext(ctx)
	batches := make(chan *batch, 4)
	g.Go(func() error {
		defer close(batches)
		return src.read(gctx, batches)
	})
	g.Go(func() error { return d.dispatch(gctx, batches) })
	for _, r := range runs {
		for _, sh := range r.shards {
			g.Go(func() error { return r.work(gctx, cfg, sh) })
		}
	}
	stopProgress := d.reportProgress(cfg, start)
	err = g.Wait()
	stopProgress(err == nil)
	if err != nil {
		return nil, err
	}

	res := &Result{Records: d.records}
	in := &report.Source{
		Input: report.Input{
			Source: src.kind(), Name: src.name(),
			Records: d.records, Events: d.events, OutOfRange: d.outOfRange,
			Refused: d.refused, RefusedByReason: d.refusedBy, Refusals: d.refusals,
		},
		Range: report.Range{From: formatTime(cfg.From), To: formatTime(cfg.To),
			FirstEvent: formatTime(d.first), LastEvent: formatTime(d.last), End: formatTime(d.end)},
		End:         d.end,
		Conversions: report.Conversions{Event: cfg.ConversionEvent, Window: cfg.ConversionWindow, ByUser: d.conv, Count: d.conversions},
	}
	for _, ts := range d.conv {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	}
	for i, r := range runs {
		dir := ""
		if i > 0 {
			dir = CompareDir
		}
		files, err := r.write(filepath.Join(cfg.OutDir, dir))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			res.Files = append(res.Files, filepath.Join(dir, f))
		}
		o := r.outcome()
		for _, msg := range o.Processing.RuleErrorMessages {
			cfg.Logger.Warn("rule evaluation failed; treated as false", "rules", r.rules, "count", r.errorCount[msg], "err", msg)
		}
		if i == 0 {
			in.A = o
		} else {
			in.B = &o
		}
	}
	res.Report = report.Build(in)
	if err := writeFile(filepath.Join(cfg.OutDir, ReportJSONFile), func(f *os.File) error { return report.WriteJSON(f, res.Report) }); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(cfg.OutDir, ReportHTMLFile), func(f *os.File) error { return report.WriteHTML(f, res.Report) }); err != nil {
		return nil, err
	}
	res.Files = append(res.Files, ReportJSONFile, ReportHTMLFile)
	res.Elapsed = time.Since(start)
	return res, nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return schema.FormatTime(t)
}

// dispatcher filters the events by range, notes conversions, keeps the
// replay clock and hands every event to its user's shard in each run.
type dispatcher struct {
	cfg  Config
	runs []*run

	c, first, last, end time.Time
	records, events     int64
	outOfRange, refused int64
	refusedBy           map[string]int64
	refusals            []report.Refusal
	conv                map[string][]time.Time
	conversions         int64

	// Progress: where the input was after each batch handed on, read by
	// the progress goroutine.
	progMu    sync.Mutex
	progMarks []mark
}

// mark is where the input stood once a batch had been handed on.
type mark struct {
	events, records int64 // cumulative
	done, total     int64
	at              time.Time
}

// shardItem is an event for one shard, with the replay clock C before and
// after it: a shard moves its clock as a single task over the whole input
// would, so every user sees the same order of events and timers.
type shardItem struct {
	in         task.Input
	before, at time.Time
}

type shardBatch struct {
	items []shardItem
	// end, when set, ends the input: the watermark moves to it.
	end   time.Time
	final bool
}

func (d *dispatcher) dispatch(ctx context.Context, in <-chan *batch) error {
	n := d.cfg.Workers
	pending := make([][]shardItem, n)
	h := fnv.New32a()
	for b := range in {
		d.records += b.records
		for _, rf := range b.refused {
			d.refused++
			d.refusedBy[rf.Reason]++
			if len(d.refusals) < report.MaxRefusals {
				d.refusals = append(d.refusals, rf)
			}
		}
		for i := range b.items {
			it := &b.items[i]
			t := it.ev.Timestamp
			if (!d.cfg.From.IsZero() && t.Before(d.cfg.From)) || (!d.cfg.To.IsZero() && t.After(d.cfg.To)) {
				d.outOfRange++
				continue
			}
			d.events++
			if d.first.IsZero() || t.Before(d.first) {
				d.first = t
			}
			key := it.ev.UserKey()
			if it.ev.Type == schema.TypeTrack && it.ev.Event == d.cfg.ConversionEvent {
				d.conv[key] = append(d.conv[key], t)
				d.conversions++
			}
			before := d.c
			if t.After(d.c) {
				d.c = t
			}
			h.Reset()
			h.Write([]byte(key))
			s := int(h.Sum32() % uint32(n))
			pending[s] = append(pending[s], shardItem{in: task.Input{Event: it.ev, Raw: it.raw, Seq: it.seq}, before: before, at: d.c})
		}
		for s, items := range pending {
			if len(items) == 0 {
				continue
			}
			for _, r := range d.runs {
				if err := r.shards[s].send(ctx, shardBatch{items: items}); err != nil {
					return err
				}
			}
			pending[s] = nil
		}
		if d.cfg.Progress == nil {
			continue
		}
		d.progMu.Lock()
		d.progMarks = append(d.progMarks, mark{events: d.events, records: d.records, done: b.done, total: b.total, at: d.c})
		d.progMu.Unlock()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	d.last = d.c
	d.end = d.cfg.To
	if d.end.IsZero() {
		d.end = d.last
	}
	for _, r := range d.runs {
		for _, sh := range r.shards {
			if err := sh.send(ctx, shardBatch{end: d.end, final: true}); err != nil {
				return err
			}
			close(sh.in)
		}
	}
	return nil
}

// run is one rule pack's replay: the engine and its shards.
type run struct {
	rules  string
	pack   *rules.Pack
	eng    *engine.Engine
	shards []*shard

	// applied counts the events the workers have applied.
	applied atomic.Int64

	mu         sync.Mutex
	cmds       []schema.SendCommand
	sups       []schema.Suppression
	stats      report.Processing
	errorCount map[string]int64
}

// shard is one worker's share of the users: a task over its own store.
type shard struct {
	db         *store.DB
	task       *task.Task
	in         chan shardBatch
	c          time.Time // the task's clock
	count      int       // events since the last flush
	cacheUsers int       // the shard's share of Config.CacheUsers
}

func (sh *shard) send(ctx context.Context, b shardBatch) error {
	select {
	case sh.in <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func newRun(pack *rules.Pack, name string, zones *zoneinfo.DB) *run {
	return &run{rules: name, pack: pack, eng: engine.New(pack, engine.Options{Zones: zones}), errorCount: map[string]int64{}}
}

func (r *run) open(cfg Config, dir string) error {
	for i := 0; i < cfg.Workers; i++ {
		opts := store.Options{CacheSize: 16 << 20}
		sdir := ""
		if cfg.InMemory {
			opts.FS = vfs.NewMem()
		} else {
			sdir = filepath.Join(dir, fmt.Sprintf("shard-%d", i))
		}
		db, err := store.Open(sdir, opts)
		if err != nil {
			return err
		}
		// Room for a few batches lets the other workers go on while one
		// flushes.
		sh := &shard{db: db, in: make(chan shardBatch, 16), cacheUsers: max(cfg.CacheUsers/cfg.Workers, 1)}
		r.shards = append(r.shards, sh)
		if sh.task, err = task.New(task.Config{Engine: r.eng, Store: db, Grace: cfg.Grace, CacheUsers: sh.cacheUsers}); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) close() {
	for _, sh := range r.shards {
		if sh.db != nil {
			sh.db.Close()
			sh.db = nil
		}
	}
}

// work applies a shard's events.
func (r *run) work(ctx context.Context, cfg Config, sh *shard) error {
	for {
		var b shardBatch
		var ok bool
		select {
		case b, ok = <-sh.in:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return nil
		}
		for i := range b.items {
			it := &b.items[i]
			if it.before.After(sh.c) {
				if err := sh.task.Advance(it.before); err != nil {
					return err
				}
			}
			if err := sh.task.Offer(it.in); err != nil {
				return err
			}
			if err := sh.task.Advance(it.at); err != nil {
				return err
			}
			sh.c = it.at
			if sh.count++; sh.count >= cfg.FlushEvery {
				if err := r.flush(sh); err != nil {
					return err
				}
			}
		}
		r.applied.Add(int64(len(b.items)))
		if b.final {
			if !b.end.IsZero() {
				if err := sh.task.AdvanceWatermark(b.end); err != nil {
					return err
				}
			}
			if err := r.flush(sh); err != nil {
				return err
			}
		}
	}
}

// flush hands on what the shard's users produced. Their state goes to the
// shard's store only once more of them changed than its share of
// CacheUsers: a store that is thrown away at the end is only worth writing
// to bound memory.
func (r *run) flush(sh *shard) error {
	sh.count = 0
	out := sh.task.Take()
	if sh.task.Dirty() >= sh.cacheUsers {
		w, err := sh.task.Snapshot()
		if err != nil {
			return err
		}
		if err := w.Apply(context.Background()); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, out.Commands...)
	r.sups = append(r.sups, out.Suppressions...)
	st := &out.Stats
	r.stats.Late += int64(st.Late)
	r.stats.Duplicates += int64(st.Duplicates)
	r.stats.Erased += int64(st.Erased)
	r.stats.ErasedDropped += int64(st.ErasedDropped)
	r.stats.Timers += int64(st.Timers)
	r.stats.Evaluated += int64(st.Evaluated)
	for _, e := range out.Errors {
		r.stats.RuleErrors++
		r.errorCount[e.Error()]++
	}
	return nil
}

func (r *run) outcome() report.Outcome {
	p := r.stats
	for msg := range r.errorCount {
		p.RuleErrorMessages = append(p.RuleErrorMessages, msg)
	}
	sort.Strings(p.RuleErrorMessages)
	return report.Outcome{Rules: r.rules, Pack: r.pack, Commands: r.cmds, Suppressions: r.sups, Processing: p}
}
