package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/microtrigger/microtrigger/internal/broker"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink"
	"github.com/microtrigger/microtrigger/sink/render"
)

func registerRun(app *kingpin.Application, e *env) {
	cmd := app.Command("run", "Embedded broker + processor + console sink + sample clickstream: prints what would be emailed, and why.")
	var port int
	var follow bool
	var rulesDir, input string
	cmd.Flag("port", "Port of the embedded broker on 127.0.0.1 (0: any free port).").Default("0").IntVar(&port)
	cmd.Flag("follow", "Keep the broker and processor running after the sample, for kcat and other clients.").BoolVar(&follow)
	cmd.Flag("rules", "Rule pack directory (default: the built-in example pack).").StringVar(&rulesDir)
	cmd.Flag("input", "Clickstream JSONL to play (default: the built-in sample).").StringVar(&input)
	cmd.Action(e.selects(func(ctx context.Context) error {
		return e.run(ctx, runOptions{port: port, follow: follow, rulesDir: rulesDir, input: input})
	}))
}

type runOptions struct {
	port            int
	follow          bool
	rulesDir, input string
}

func (e *env) run(ctx context.Context, o runOptions) error {
	if o.rulesDir != "" {
		if err := e.needDir("run", "--rules", o.rulesDir, aRulePack); err != nil {
			return err
		}
	}
	if o.input != "" {
		if err := e.needFile("run", "--input", o.input, "a JSONL file of events, one Segment envelope per line"); err != nil {
			return err
		}
	}
	sample := e.assets.Sample
	if o.input != "" {
		b, err := os.ReadFile(o.input)
		if err != nil {
			return fmt.Errorf("read --input: %w", err)
		}
		sample = b
	}
	var rfs fs.FS = e.assets.Rules
	if o.rulesDir != "" {
		rfs = os.DirFS(o.rulesDir)
	}
	pack, err := rules.Load(rfs, rules.Options{})
	if err != nil {
		return fmt.Errorf("load rules:\n%w", err)
	}
	recs, events := sampleRecords(sample)
	if len(recs) == 0 {
		return fmt.Errorf("the clickstream holds no events")
	}

	cluster, err := broker.Start(broker.Options{Port: o.port, Partitions: 4})
	if err != nil {
		return err
	}
	defer cluster.Close()
	addr := broker.Addr(cluster)
	fmt.Fprintf(e.stdout, "embedded broker listening on %s (topics: events, send-commands, events-dlq, commands-dlq, processor-changelog)\n", addr)

	stateDir, err := os.MkdirTemp("", "microtrigger-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)
	seeds := broker.ClientOpts(cluster)
	first := recs[0].Time
	for _, r := range recs {
		if r.Time.Before(first) {
			first = r.Time
		}
	}
	clock := processor.NewManualClock(first.Add(-time.Hour))
	p, err := processor.New(processor.Config{
		Kafka:           seeds,
		Pack:            pack,
		StateDir:        stateDir,
		Clock:           clock,
		TickInterval:    5 * time.Millisecond,
		TransactionalID: "microtrigger-run",
		Logger:          e.quietLogger(),
	})
	if err != nil {
		return err
	}
	producer, err := kgo.NewClient(seeds...)
	if err != nil {
		return err
	}
	defer producer.Close()

	// The sink prints each email as it is delivered; run waits for all of
	// them before it prints the summary.
	local, err := render.LoadLocal(e.assets.Templates, render.Address{Email: "hello@shop.example", Name: "The Shop"})
	if err != nil {
		return fmt.Errorf("load templates: %w", err)
	}
	sinkDir, err := os.MkdirTemp("", "microtrigger-run-sink-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(sinkDir)
	var deliveredMu sync.Mutex
	delivered := 0
	deliveredCh := make(chan struct{}, 1)
	// The sink's clock stands at the start of the sample. The simulated
	// clock crosses a day of events in one step and a month of timers in
	// the next, ahead of the sink that reads behind it: on that clock the
	// emails would have expired by the time they are read (and on the real
	// one, the sample's March 2026 emails all have). A deployed sink reads
	// each command moments after its send_at; a sink whose clock does not
	// move shows what that one sends.
	sk, err := sink.New(sink.Config{
		Kafka:     seeds,
		StateDir:  sinkDir,
		Transport: sink.Console(e.stdout, local),
		Now:       func() time.Time { return first },
		Logger:    e.quietLogger(),
		OnDelivered: func(schema.SendCommand) {
			deliveredMu.Lock()
			delivered++
			deliveredMu.Unlock()
			select {
			case deliveredCh <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		return err
	}
	awaitDelivered := func(ctx context.Context, n int) error {
		for {
			deliveredMu.Lock()
			d := delivered
			deliveredMu.Unlock()
			if d >= n {
				return nil
			}
			select {
			case <-deliveredCh:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}

	var reported atomic.Bool
	g, gctx := errgroup.WithContext(ctx)
	pctx, stopProcessor := context.WithCancel(gctx)
	defer stopProcessor()
	g.Go(func() error { return p.Run(pctx) })
	g.Go(func() error { return sk.Run(pctx) })
	g.Go(func() error {
		defer stopProcessor()
		sim := &processor.Simulation{Processors: []*processor.Processor{p}, Clock: clock, Producer: producer, Topic: schema.TopicEvents}
		fmt.Fprintf(e.stdout, "playing %d events from %s to %s on a simulated clock...\n",
			len(recs), schema.FormatTime(first), schema.FormatTime(recs[len(recs)-1].Time))
		if err := sim.Play(gctx, recs); err != nil {
			return err
		}
		// Let timers run their course: the longest trigger waits 30 days.
		end := recs[len(recs)-1].Time.Add(31 * 24 * time.Hour)
		if err := sim.Advance(gctx, end); err != nil {
			return err
		}
		if err := e.report(gctx, seeds, events, awaitDelivered); err != nil {
			return err
		}
		reported.Store(true)
		if o.follow {
			fmt.Fprintf(e.stdout, "\nstill running (Ctrl-C to stop); watch with:\n  kcat -b %s -C -t send-commands -X isolation.level=read_committed\n  kcat -b %s -P -t events -K '|' -X partitioner=murmur2_random\n", addr, addr)
			<-gctx.Done()
		}
		return nil
	})
	err = g.Wait()
	if ctx.Err() != nil {
		if reported.Load() {
			return nil // --follow, stopped after the report
		}
		return fmt.Errorf("stopped before the report: %w", ctx.Err())
	}
	return err
}

// sampleRecords turns a JSONL clickstream into records to play. Lines the
// decoder refuses are played too (they are what the dead-letter topic is
// for), at the time of the line before them.
func sampleRecords(b []byte) ([]processor.TimedRecord, map[string]schema.Event) {
	var recs []processor.TimedRecord
	events := map[string]schema.Event{}
	var last time.Time
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), schema.MaxEventBytes*2)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		raw := append([]byte(nil), line...)
		ev, err := schema.DecodeEvent(raw)
		if err != nil {
			recs = append(recs, processor.TimedRecord{Time: last, Value: raw})
			continue
		}
		last = ev.Timestamp
		events[ev.MessageID] = ev
		recs = append(recs, processor.TimedRecord{Time: ev.Timestamp, Key: []byte(ev.UserKey()), Value: raw})
	}
	if len(recs) > 0 && recs[0].Time.IsZero() {
		for i := range recs {
			if !recs[i].Time.IsZero() {
				for j := 0; j < i; j++ {
					recs[j].Time = recs[i].Time
				}
				break
			}
		}
	}
	return recs, events
}

// report prints every send-command and dead letter, once the sink has
// delivered every command.
func (e *env) report(ctx context.Context, seeds []kgo.Opt, events map[string]schema.Event, awaitDelivered func(context.Context, int) error) error {
	cmdRecs, err := broker.ReadAll(ctx, seeds, schema.TopicCommands)
	if err != nil {
		return err
	}
	if err := awaitDelivered(ctx, len(cmdRecs)); err != nil {
		return err
	}
	var cmds []schema.SendCommand
	for _, r := range cmdRecs {
		c, err := schema.UnmarshalCommand(r.Value)
		if err != nil {
			return err
		}
		cmds = append(cmds, c)
	}
	sort.SliceStable(cmds, func(i, j int) bool {
		if !cmds[i].SendAt.Equal(cmds[j].SendAt) {
			return cmds[i].SendAt.Before(cmds[j].SendAt)
		}
		return cmds[i].UserID < cmds[j].UserID
	})
	fmt.Fprintf(e.stdout, "\n%d emails would be sent:\n\n", len(cmds))
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEND AT (UTC)\tTO\tTRIGGER\tTEMPLATE\tVARIANT\tWHY")
	for _, c := range cmds {
		v := c.Variant
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.SendAt.UTC().Format("Mon 01-02 15:04"), schema.MaskEmail(c.Email),
			c.Trigger, c.Template, v, why(c, events))
	}
	tw.Flush()

	dlq, err := broker.ReadAll(ctx, seeds, schema.TopicEventsDLQ)
	if err != nil {
		return err
	}
	sort.Slice(dlq, func(i, j int) bool {
		if dlq[i].Partition != dlq[j].Partition {
			return dlq[i].Partition < dlq[j].Partition
		}
		return dlq[i].Offset < dlq[j].Offset
	})
	fmt.Fprintf(e.stdout, "\n%d events were dead-lettered to %s:\n\n", len(dlq), schema.TopicEventsDLQ)
	tw = tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tREASON\tDETAIL")
	for _, r := range dlq {
		hs := make([]schema.Header, 0, len(r.Headers))
		for _, h := range r.Headers {
			hs = append(hs, schema.Header{Key: h.Key, Value: h.Value})
		}
		d := schema.ParseDeadLetter(r.Key, r.Value, hs)
		fmt.Fprintf(tw, "%s/%d@%d\t%s\t%s\n", d.Topic, d.Partition, d.Offset, d.Reason, d.Message)
	}
	tw.Flush()
	return nil
}

// why describes the cause of a command: the event that fired it, or the
// timer and the event that started its run.
func why(c schema.SendCommand, events map[string]schema.Event) string {
	id, prefix := c.Cause, ""
	if strings.HasPrefix(id, "timer:") {
		parts := strings.Split(id, ":")
		if len(parts) >= 3 {
			id = strings.Join(parts[1:len(parts)-1], ":")
		}
		prefix = "timer after "
	}
	ev, ok := events[id]
	if !ok {
		return c.Cause
	}
	return prefix + describe(ev)
}

func describe(ev schema.Event) string {
	var b strings.Builder
	b.WriteString(ev.Key())
	if p := ev.Path(); p != "" {
		b.WriteString(" " + p)
	}
	for _, k := range []string{"name", "element", "form", "percent", "position", "price"} {
		if v, ok := ev.Properties[k]; ok {
			fmt.Fprintf(&b, " %s=%v", k, v)
		}
	}
	b.WriteString(" at " + ev.Timestamp.UTC().Format("Mon 15:04"))
	return b.String()
}
