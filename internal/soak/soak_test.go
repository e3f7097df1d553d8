package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/clickstream"
	"github.com/microtrigger/microtrigger/internal/crashpoint"
	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/processor/backtest"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink/render"
	"github.com/microtrigger/microtrigger/sink/sendgrid/sendgridtest"
)

// profile sizes a run.
type profile struct {
	name         string
	backlogUsers int           // published before the processors start
	liveUsers    int           // their events published at the wall clock
	liveSpan     time.Duration // the most live traffic there is; it stops once the faults are done
	rounds       int           // how many times the processor crash points are gone through
}

var (
	// The live traffic outlasts the faults on a slow machine, so that
	// every takeover is measured on partitions that have work: about 55
	// users a second either way.
	short = profile{name: "short", backlogUsers: 10_000, liveUsers: 13_200, liveSpan: 4 * time.Minute, rounds: 1}
	long  = profile{name: "long", backlogUsers: 60_000, liveUsers: 66_000, liveSpan: 20 * time.Minute, rounds: 3}
)

const (
	partitions = 6
	apiKey     = "SG.soak-test-key"
	group      = "microtrigger-processor"
	// Every address the stream holds ends so; no log may show one.
	addressSuffix = "@example.com"
)

// report is what a run found; it is logged and written to report.json.
type report struct {
	Profile        string `json:"profile"`
	Users          int    `json:"users"`
	Events         int64  `json:"events"`
	BacklogEvents  int    `json:"backlog_events"`
	Commands       int    `json:"commands"`         // on send-commands, read committed
	Expected       int    `json:"expected"`         // by the backtest, in the compared range
	Compared       int    `json:"compared"`         // live commands in the compared range
	Lost           int    `json:"lost"`             // expected, not on the topic
	Extra          int    `json:"extra"`            // on the topic, not expected
	DoubledOnTopic int    `json:"doubled_on_topic"` // one command id twice on the topic
	Accepted       int    `json:"accepted"`         // distinct commands SendGrid accepted
	DoubledEmails  int    `json:"doubled_emails"`   // commands SendGrid accepted more than once
	Undelivered    int    `json:"undelivered"`      // on the topic at To, neither accepted nor dead-lettered
	// DeadLettered counts commands-dlq records by reason.
	DeadLettered map[string]int `json:"dead_lettered"`
	// AcceptedAndDeadLettered are commands SendGrid accepted that were
	// also dead-lettered (an email reported failed that went out).
	AcceptedAndDeadLettered int `json:"accepted_and_dead_lettered"`
	// Faults lists what was done, in order, with the takeover measured
	// after each (seconds from the death to every partition committing
	// again), unless it died again first.
	Faults []fault `json:"faults"`
	// SendGridFaults counts the stand-in's scripted answers by kind.
	SendGridFaults map[string]int `json:"sendgrid_faults"`
	Seconds        float64        `json:"seconds"`

	mu sync.Mutex // SendGridFaults is counted by the fault goroutine
}

type fault struct {
	What      string   `json:"what"`
	Takeover  *float64 `json:"takeover_seconds,omitempty"`
	DiedAgain bool     `json:"died_again_first,omitempty"`
}

// TestSoak is the fault harness (see the package documentation).
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault harness runs real processes for minutes")
	}
	prof := short
	if os.Getenv("MICROTRIGGER_SOAK") == "long" {
		prof = long
	}
	began := time.Now()
	out := os.Getenv("MICROTRIGGER_SOAK_OUT")
	if out == "" {
		out = t.TempDir()
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	bin := buildBinary(t, work)
	pack := soakPack(t, filepath.Join(work, "rules"))
	if loadPack(t, pack).Policy.Quiet != nil {
		t.Fatal("the soak pack still has quiet hours")
	}
	rep := &report{Profile: prof.name, Users: prof.backlogUsers + prof.liveUsers, DeadLettered: map[string]int{}, SendGridFaults: map[string]int{}}
	var procs []*supervised
	t.Cleanup(func() {
		for _, p := range procs {
			p.stop()
			logs := p.logs.String()
			if l := leaks(logs, addressSuffix); len(l) > 0 {
				t.Errorf("%s logged %d lines with an address, first: %s", p.name, len(l), l[0])
			}
			os.WriteFile(filepath.Join(out, p.name+".log"), []byte(logs), 0o644)
		}
		rep.Seconds = time.Since(began).Seconds()
		rep.mu.Lock()
		b, _ := json.MarshalIndent(rep, "", "  ")
		rep.mu.Unlock()
		os.WriteFile(filepath.Join(out, "report.json"), append(b, '\n'), 0o644)
		t.Logf("report (%s):\n%s", filepath.Join(out, "report.json"), b)
	})

	// The broker, as its own process on a fixed port with its data on
	// disk, so that it can be stopped and started again.
	addr := freeAddr(t)
	brokerArgs := []string{"broker", "--port", strings.TrimPrefix(addr[strings.LastIndex(addr, ":"):], ":"),
		"--partitions", fmt.Sprint(partitions), "--data-dir", filepath.Join(work, "broker")}
	brk := supervise(t, "broker", bin, "", brokerArgs, nil)
	procs = append(procs, brk)
	awaitListening(t, addr, time.Minute, brk.logs)
	seeds := []kgo.Opt{kgo.SeedBrokers(addr), kgo.FetchMaxWait(100 * time.Millisecond)}
	adm := kadm.NewClient(kafkatest.Client(t, seeds...))

	// The backlog: hours of activity of backlogUsers, and the history of
	// liveUsers, whose scripted behaviour starts after now. Everything up
	// to now is published before the processors start; what comes after,
	// at its time.
	now := time.Now().UTC().Truncate(time.Second)
	liveEnd := now.Add(prof.liveSpan)
	var backlog, live []clickstream.Event
	split := func(events []clickstream.Event) {
		for _, e := range events {
			switch {
			case !e.Time.After(now):
				backlog = append(backlog, e)
			case !e.Time.After(liveEnd):
				live = append(live, e)
			}
		}
	}
	split(clickstream.Generate(clickstream.Config{Users: prof.backlogUsers, EventsPerUser: 8, Seed: 29,
		Start: now.Add(-5 * time.Hour), Span: 4 * time.Hour}))
	split(clickstream.Generate(clickstream.Config{Users: prof.liveUsers, EventsPerUser: 8, Seed: 31,
		Start: now.Add(10 * time.Second), Span: prof.liveSpan - 10*time.Second, Prefix: "live-"}))
	sort.SliceStable(backlog, func(i, j int) bool { return backlog[i].Time.Before(backlog[j].Time) })
	sort.SliceStable(live, func(i, j int) bool { return live[i].Time.Before(live[j].Time) })
	producer := kafkatest.Client(t, append(append([]kgo.Opt(nil), seeds...), kgo.RecordRetries(1<<30))...)
	recs := make([]*kgo.Record, len(backlog))
	for i, e := range backlog {
		recs[i] = &kgo.Record{Topic: schema.TopicEvents, Key: e.Key, Value: e.Value}
	}
	kafkatest.Produce(t, producer, recs...)
	rep.BacklogEvents = len(backlog)
	t.Logf("%s profile: %d backlog events of %d users published; %d live events of them and %d more users to come over %s",
		prof.name, len(backlog), prof.backlogUsers, len(live), prof.liveUsers, prof.liveSpan)

	// The SendGrid stand-in, and its event webhook posting to the sinks.
	mapping := loadMapping(t)
	var ids []string
	for _, tpl := range mapping.Templates {
		ids = append(ids, tpl.ID)
	}
	srv := sendgridtest.New(t, sendgridtest.Options{APIKey: apiKey, Templates: ids})
	hook, err := sendgridtest.NewWebhook(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(work, "webhook.pem")
	apiKeyFile := filepath.Join(work, "sendgrid.key")
	if err := os.WriteFile(keyFile, hook.PublicKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(apiKeyFile, []byte(apiKey), 0o600); err != nil {
		t.Fatal(err)
	}

	// Sinks: s0 dies at both sink crash points in turn.
	// MICROTRIGGER_SOAK_SINK_LOG=debug has them log every command they skip.
	sinkLogLevel := "info"
	if l := os.Getenv("MICROTRIGGER_SOAK_SINK_LOG"); l != "" {
		sinkLogLevel = l
	}
	var hookURLs []string
	sink := func(name string, lives ...life) *supervised {
		hookAddr := freeAddr(t)
		hookURLs = append(hookURLs, "http://"+hookAddr+"/sendgrid/events")
		dir := filepath.Join(work, name)
		s := supervise(t, name, bin, dir, []string{"sink", "--brokers", addr, "--instance-id", name, "--state-dir", dir,
			"--transport", "sendgrid", "--sendgrid.url", srv.URL, "--sendgrid.templates", "../../testdata/templates/sendgrid.yaml",
			"--sendgrid.api-key-file", apiKeyFile, "--sendgrid.timeout", "2s", "--sendgrid.unknown-deadline", "15s",
			"--sendgrid.rate-limit=-1", "--sendgrid.batch-size", "200",
			"--webhook.listen", hookAddr, "--webhook.public-key-file", keyFile, "--metrics.listen", "", "--log.format", "text",
			"--log.level", sinkLogLevel}, nil, lives...)
		procs = append(procs, s)
		return s
	}
	s0 := sink("sink-0", life{crashAt: crashpoint.SinkBeforeSettle + ":3"}, life{crashAt: crashpoint.SinkAfterAttempt + ":4"}, life{})
	sink("sink-1")

	// Processors: a goes through the crash points, b and c stay up.
	// MICROTRIGGER_SOAK_PROCESSOR_LOG=debug has them log every transaction.
	processorLogLevel := "info"
	if l := os.Getenv("MICROTRIGGER_SOAK_PROCESSOR_LOG"); l != "" {
		processorLogLevel = l
	}
	processor := func(name string, lives ...life) *supervised {
		dir := filepath.Join(work, name)
		args := []string{"processor", "--brokers", addr, "--rules", pack,
			"--state-dir", dir, "--transactional-id", name, "--instance-id", name, "--metrics.listen", "", "--log.format", "text",
			"--log.level", processorLogLevel,
			"--snapshot.interval", "2s", "--snapshot.users", "1000"}
		p := supervise(t, name, bin, dir, args, nil, lives...)
		procs = append(procs, p)
		return p
	}
	// Its first life is killed by the harness in the middle of the
	// backlog; the others die at their crash point, some transactions
	// into live traffic.
	aLives := []life{{}}
	points := []life{
		{crashAt: crashpoint.BeforeProduce + ":3"},
		{crashAt: crashpoint.AfterProduce + ":3"},
		{crashAt: crashpoint.AfterCommit + ":3"},
		{crashAt: crashpoint.MidRestore, wipe: true},
	}
	for range prof.rounds {
		aLives = append(aLives, points...)
	}
	aLives = append(aLives, life{wipe: true})
	a := processor("processor-a", aLives...)
	b := processor("processor-b")

	// Live traffic at the wall clock. While the broker is away it is
	// paused, and what falls due meanwhile is not published, nor what the
	// publisher is more than 2s late for: a tracker's events would arrive
	// later than the grace allows, and be counted late, which a backtest
	// of the topic cannot know.
	var paused atomic.Bool
	var skipped, liveSent, maxBlock atomic.Int64
	liveDone := make(chan struct{})
	stopLive := make(chan struct{}) // the faults are done
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer close(liveDone)
		for _, e := range live {
			if d := time.Until(e.Time); d > 0 {
				select {
				case <-time.After(d): // the wall-clock pace of live traffic
				case <-stopLive:
					return
				case <-ctx.Done():
					return
				}
			}
			if paused.Load() || time.Since(e.Time) > 2*time.Second {
				skipped.Add(1)
				continue
			}
			liveSent.Add(1)
			began := time.Now()
			producer.Produce(ctx, &kgo.Record{Topic: schema.TopicEvents, Key: e.Key, Value: e.Value}, func(_ *kgo.Record, err error) {
				if err != nil && ctx.Err() == nil {
					t.Errorf("produce a live event: %v", err)
				}
			})
			if d := int64(time.Since(began)); d > maxBlock.Load() {
				maxBlock.Store(d)
			}
		}
	}()

	// SendGrid misbehaves now and then, one scripted fault at a time.
	sgFaults := []struct {
		kind string
		f    sendgridtest.Fault
	}{
		{"429", sendgridtest.RateLimited(time.Second)},
		{"500", sendgridtest.Status(500)},
		{"cut_after_accept", sendgridtest.Cut(true)},
		{"503", sendgridtest.Status(503)},
		{"cut_before_accept", sendgridtest.Cut(false)},
		{"hang_after_accept", sendgridtest.Hang(true)},
	}
	// After a fault, two more requests come before the next: a request
	// retried alone is never failed at every attempt (SendGrid down for
	// good, which retries_exhausted is for, is not this run's business).
	go func() {
		last := 0
		for i := 0; ; {
			select {
			case <-ctx.Done():
				return
			case <-time.After(700 * time.Millisecond): // a pace, not an await
			}
			n := srv.Received()
			if n == 0 || n < last+2 {
				continue
			}
			last = n
			f := sgFaults[i%len(sgFaults)]
			i++
			srv.Script(f.f)
			rep.addSendGridFault(f.kind)
		}
	}()
	// SendGrid's event webhook: "processed" and "delivered" for each
	// accepted email, posted to a sink that is up.
	go func() {
		posted := map[string]bool{}
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(300 * time.Millisecond): // SendGrid batches its posts
			}
			var fresh []string
			for id := range srv.Delivered() {
				if !posted[id] {
					fresh = append(fresh, id)
				}
			}
			if len(fresh) == 0 {
				continue
			}
			events := srv.Events(fresh, "processed", "delivered")
			for try := 0; ; try++ {
				pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := hook.Emit(pctx, hookURLs[(i+try)%len(hookURLs)], events)
				pcancel()
				if err == nil {
					for _, id := range fresh {
						posted[id] = true
					}
					break
				}
				if ctx.Err() != nil {
					return
				}
			}
		}
	}()

	// committed returns the group's committed offsets on events.
	committed := func() map[int32]int64 {
		out := map[int32]int64{}
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		offs, err := adm.FetchOffsets(cctx, group)
		if err != nil {
			return out
		}
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == schema.TopicEvents && o.Err == nil {
				out[o.Partition] = o.At
			}
		})
		return out
	}
	// takeover waits until every partition has committed past where it
	// was at since (or, for a partition at its end, is at its end), and
	// returns how long that took from since; -1 if victim dies first.
	ends := func() map[int32]int64 {
		out := map[int32]int64{}
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		e, err := adm.ListEndOffsets(cctx, schema.TopicEvents)
		if err != nil {
			return out
		}
		e.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		return out
	}
	takeover := func(what string, at time.Time, before map[int32]int64, victim *supervised) float64 {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for {
			now, end := committed(), ends()
			// Live traffic reaches every partition: each has committed
			// past where it stood once its owner is back (after the
			// live traffic, one at its end has nothing left to show).
			over := false
			select {
			case <-liveDone:
				over = true
			default:
			}
			moved := len(end) == partitions
			for p := range int32(partitions) {
				if now[p] <= before[p] && (!over || now[p] < end[p]) {
					moved = false
				}
			}
			if moved {
				d := time.Since(at).Seconds()
				rep.Faults = append(rep.Faults, fault{What: what, Takeover: &d})
				var sum int64
				for _, e := range end {
					sum += e
				}
				t.Logf("%s: every partition committing again %.2fs after (%d events on the topic, %d live published)", what, d, sum, liveSent.Load())
				return d
			}
			if victim != nil && len(victim.deaths) > 0 {
				rep.Faults = append(rep.Faults, fault{What: what, DiedAgain: true})
				t.Logf("%s: died again before its partitions committed", what)
				return -1
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the partitions did not commit again within 3 minutes", what)
			}
			time.Sleep(50 * time.Millisecond) // polling the group's offsets
		}
	}

	// a is killed a third of the way into the backlog, then goes through
	// its crash points, each time restarted at once.
	for {
		var sum int64
		for _, o := range committed() {
			sum += o
		}
		if sum >= int64(len(backlog)/3) {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling the group's offsets
	}
	a.signal(syscall.SIGKILL)
	for i := 0; i < len(aLives)-1; i++ {
		d := a.awaitDeath(3*time.Minute, "a crash at "+aLives[i].crashAt)
		if !d.killed {
			t.Fatalf("processor-a life %d ended without SIGKILL (%v):\n%s", i, d.err, a.logs)
		}
		how := "by the harness, in the backlog"
		if d.crashAt != "" {
			how = "at " + d.crashAt
		}
		takeover(fmt.Sprintf("processor-a killed %s, restarted%s", how, map[bool]string{true: " on an empty volume"}[aLives[i+1].wipe]),
			d.at, committed(), a)
	}
	if !strings.Contains(a.logs.String(), "crashpoint: SIGKILL at "+crashpoint.MidRestore) {
		t.Errorf("processor-a never died mid-restore")
	}
	// An instance joins: a rebalance under load.
	joined := time.Now()
	processor("processor-c")
	takeover("processor-c joins", joined, committed(), nil)

	// b is killed for good: a and c take its partitions once its session
	// times out.
	b.signal(syscall.SIGKILL)
	d := b.awaitDeath(time.Minute, "b killed")
	takeover("processor-b killed, not restarted", d.at, committed(), nil)

	// The broker is stopped and started again on the same port and data.
	paused.Store(true)
	brk.again(life{after: 3 * time.Second})
	stopped := time.Now()
	brk.signal(syscall.SIGTERM)
	brk.awaitDeath(time.Minute, "the broker stopping")
	awaitListening(t, addr, time.Minute, brk.logs)
	paused.Store(false)
	t.Logf("broker down for %.2fs", time.Since(stopped).Seconds())
	takeover("broker stopped and restarted", stopped, committed(), nil)
	select {
	case <-liveDone:
		t.Errorf("the live traffic (%s) ended before the faults did: a takeover after it measures partitions with nothing to do; raise the profile's liveSpan", prof.liveSpan)
	default:
	}

	for _, point := range []string{crashpoint.SinkBeforeSettle, crashpoint.SinkAfterAttempt} {
		if d := s0.awaitDeath(3*time.Minute, "sink-0 crash at "+point); !d.killed {
			t.Fatalf("sink-0 ended without SIGKILL (%v):\n%s", d.err, s0.logs)
		}
		rep.Faults = append(rep.Faults, fault{What: "sink-0 killed at " + point + ", restarted"})
	}

	// The end: live traffic a little longer, then over; every timer due
	// by To fired, every partition committed to its end.
	time.Sleep(10 * time.Second) // live traffic after the last fault: a span, not an await
	close(stopLive)
	<-liveDone
	grace := loadPack(t, pack).Policy.Grace
	to := time.Now().UTC()
	time.Sleep(time.Until(to.Add(grace + 3*time.Second))) // the clock must pass To: there is nothing to await
	// Timers of the backlog keep falling due after To, so emails keep
	// going out and the webhook keeps publishing their events: the topic
	// never stops growing. Done is every partition committed to where its
	// end stood once the clock had passed To.
	var end map[int32]int64
	for deadline := time.Now().Add(time.Minute); len(end) != partitions; {
		if end = ends(); len(end) != partitions {
			if time.Now().After(deadline) {
				t.Fatalf("no end offsets for the events topic: %v", end)
			}
			time.Sleep(50 * time.Millisecond) // polling the broker
		}
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		now := committed()
		done := true
		var total int64
		for p, e := range end {
			total += e
			if now[p] < e {
				done = false
			}
		}
		if done {
			rep.Events = total
			break
		}
		if time.Now().After(deadline) {
			for _, p := range procs {
				if strings.HasPrefix(p.name, "processor") {
					t.Logf("%s, its last lines:\n%s", p.name, p.tail(40))
				}
			}
			t.Fatalf("the processors did not commit every event up to the ends after To: committed %v, ends %v", now, end)
		}
		time.Sleep(50 * time.Millisecond) // polling the group's offsets
	}
	t.Logf("%d events on the topic (%d live published, %d skipped while the broker was away or the publisher behind; longest produce call %s)",
		rep.Events, liveSent.Load(), skipped.Load(), time.Duration(maxBlock.Load()))

	// The send-commands against the backtest of the same topic.
	var liveCmds []schema.SendCommand
	seen := map[string]int{}
	for _, r := range kafkatest.ReadAll(t, seeds, schema.TopicCommands) {
		var c schema.SendCommand
		if err := json.Unmarshal(r.Value, &c); err != nil {
			t.Fatalf("a send-command that does not decode: %v", err)
		}
		seen[c.ID]++
		if seen[c.ID] == 2 {
			rep.DoubledOnTopic++
		}
		liveCmds = append(liveCmds, c)
	}
	rep.Commands = len(seen)
	btOut := filepath.Join(work, "backtest")
	if _, err := backtest.Run(ctx, backtest.Config{Pack: loadPack(t, pack), Topic: schema.TopicEvents, Kafka: seeds, To: to, OutDir: btOut}); err != nil {
		t.Fatal(err)
	}
	// Both sides are compared on what is due well before To: a timer due
	// at To may have fired live a moment after it.
	horizon := to.Add(-grace - 2*time.Second)
	want := map[string]bool{}
	for _, line := range readLines(t, filepath.Join(btOut, backtest.CommandsFile)) {
		var c schema.SendCommand
		if err := json.Unmarshal(line, &c); err != nil {
			t.Fatal(err)
		}
		if !c.SendAt.After(horizon) {
			want[c.ID] = true
		}
	}
	rep.Expected = len(want)
	got := map[string]bool{}
	for _, c := range liveCmds {
		if !c.SendAt.After(horizon) {
			got[c.ID] = true
		}
	}
	rep.Compared = len(got)
	for id := range want {
		if !got[id] {
			rep.Lost++
		}
	}
	for id := range got {
		if !want[id] {
			rep.Extra++
		}
	}

	// Every command on the topic was accepted by SendGrid once, or
	// dead-lettered.
	dlq := func() map[string]string {
		out := map[string]string{}
		for _, r := range kafkatest.ReadAll(t, seeds, schema.TopicCommandsDLQ) {
			var c schema.SendCommand
			if err := json.Unmarshal(r.Value, &c); err != nil {
				continue
			}
			for _, h := range r.Headers {
				if h.Key == schema.HeaderDLQReason {
					out[c.ID] = string(h.Value)
				}
			}
		}
		return out
	}
	// Timers due after To go on firing, and their emails keep going out:
	// what must be accounted for is every command on the topic when the
	// processors had committed to To (liveCmds). Each look reads what
	// SendGrid accepted and what was dead-lettered first, then the topic,
	// so that every command those name was on the topic when it was read.
	account := map[string]bool{}
	for _, c := range liveCmds {
		account[c.ID] = true
	}
	var dead map[string]string
	var delivered map[string]int
	settled := func() bool {
		delivered = srv.Delivered()
		dead = dlq()
		seen = map[string]int{}
		for _, r := range kafkatest.ReadAll(t, seeds, schema.TopicCommands) {
			var c schema.SendCommand
			if err := json.Unmarshal(r.Value, &c); err != nil {
				t.Fatalf("a send-command that does not decode: %v", err)
			}
			seen[c.ID]++
		}
		rep.Undelivered = 0
		for id := range account {
			if delivered[id] == 0 && dead[id] == "" {
				rep.Undelivered++
			}
		}
		return rep.Undelivered == 0
	}
	sinkDeadline := time.Now().Add(3 * time.Minute)
	for !settled() {
		if time.Now().After(sinkDeadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // polling what SendGrid holds
	}
	rep.Commands, rep.DoubledOnTopic = len(seen), 0
	for _, n := range seen {
		if n > 1 {
			rep.DoubledOnTopic++
		}
	}
	for id, n := range delivered {
		if seen[id] == 0 {
			t.Errorf("SendGrid accepted command %s, which is not on send-commands", id)
		}
		rep.Accepted++
		if n > 1 {
			rep.DoubledEmails++
		}
	}
	for id, reason := range dead {
		if seen[id] == 0 {
			t.Errorf("command %s dead-lettered (%s) is not on send-commands", id, reason)
		}
		rep.DeadLettered[reason]++
		if delivered[id] > 0 {
			rep.AcceptedAndDeadLettered++
		}
	}

	// What must hold.
	if rep.Expected < 1000 {
		t.Errorf("the backtest expects only %d commands: the run proves little", rep.Expected)
	}
	if rep.Lost != 0 || rep.Extra != 0 {
		t.Errorf("live differs from the backtest: %d lost, %d extra, of %d expected", rep.Lost, rep.Extra, rep.Expected)
	}
	if rep.DoubledOnTopic != 0 {
		t.Errorf("%d commands twice on send-commands", rep.DoubledOnTopic)
		copies := map[string][]string{}
		for _, r := range kafkatest.ReadAll(t, seeds, schema.TopicCommands) {
			var c schema.SendCommand
			if json.Unmarshal(r.Value, &c) == nil && seen[c.ID] > 1 {
				copies[c.ID] = append(copies[c.ID], fmt.Sprintf("partition %d offset %d producer %d epoch %d at %s",
					r.Partition, r.Offset, r.ProducerID, r.ProducerEpoch, r.Timestamp.UTC().Format("15:04:05.000")))
			}
		}
		n := 0
		for id, cs := range copies {
			if n++; n <= 10 {
				t.Logf("twice on send-commands: command %s: %s", id, strings.Join(cs, "; "))
			}
		}
	}
	if rep.Undelivered != 0 {
		t.Errorf("%d commands neither accepted by SendGrid nor dead-lettered", rep.Undelivered)
		n := 0
		for _, r := range kafkatest.ReadAll(t, seeds, schema.TopicCommands) {
			var c schema.SendCommand
			if json.Unmarshal(r.Value, &c) != nil || !account[c.ID] || delivered[c.ID] > 0 || dead[c.ID] != "" {
				continue
			}
			if n++; n <= 10 {
				t.Logf("undelivered: command %s trigger %s partition %d offset %d send_at %s expires_at %s",
					c.ID, c.Trigger, r.Partition, r.Offset, schema.FormatTime(c.SendAt), schema.FormatTime(c.ExpiresAt))
			}
		}
	}
	if rep.DoubledEmails != 0 {
		t.Errorf("%d commands accepted by SendGrid more than once", rep.DoubledEmails)
		reqs := srv.Accepted()
		n := 0
		for id, k := range delivered {
			if k < 2 {
				continue
			}
			if n++; n > 10 {
				break
			}
			var in []string
			for i, r := range reqs {
				for _, p := range r.Personalizations {
					if p.CustomArgs["command_id"] == id {
						in = append(in, fmt.Sprintf("request %d of %d messages at %s", i, len(r.Personalizations), r.At.Format("15:04:05.000")))
					}
				}
			}
			t.Logf("accepted twice: command %s, in %s", id, strings.Join(in, "; "))
		}
	}
	if rep.AcceptedAndDeadLettered != 0 {
		t.Errorf("%d commands dead-lettered although SendGrid accepted them", rep.AcceptedAndDeadLettered)
	}
	for reason, n := range rep.DeadLettered {
		// expired: sent hours late, after its intent's window (the
		// backlog); outcome_unknown: a connection cut before SendGrid
		// accepted, no event ever proved it sent, dead-lettered at the
		// deadline as the README says.
		if reason != string(schema.ReasonExpired) && reason != string(schema.ReasonOutcomeUnknown) {
			t.Errorf("%d commands dead-lettered as %s", n, reason)
		}
	}
	if rep.Accepted < 1000 {
		t.Errorf("SendGrid accepted only %d commands: the run proves little", rep.Accepted)
	}
}

func (r *report) addSendGridFault(kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.SendGridFaults[kind]++
}

// soakPack copies the example pack into dir without its quiet hours: the
// run's outcome must not depend on the hour of the day it runs at (quiet
// hours would defer every send of a run at night to the morning).
func soakPack(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../../testdata/rules/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example pack: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(f) == "policy.yaml" {
			var kept []string
			skip := false
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "  quiet_hours:") {
					skip = true
					kept = append(kept, "  quiet_hours: null")
					continue
				}
				if skip && strings.HasPrefix(line, "    ") {
					continue
				}
				skip = false
				kept = append(kept, line)
			}
			if len(kept) >= len(strings.Split(string(b), "\n")) {
				t.Fatal("the example policy has no quiet_hours block to take out")
			}
			b = []byte(strings.Join(kept, "\n"))
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadPack(t *testing.T, dir string) *rules.Pack {
	t.Helper()
	p, err := rules.Load(os.DirFS(dir), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func loadMapping(t *testing.T) *render.Mapping {
	t.Helper()
	b, err := os.ReadFile("../../testdata/templates/sendgrid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := render.LoadMapping(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
