package processor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/broker"
	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/schema"
)

// process is one `microtrigger processor` process.
type process struct {
	cmd  *exec.Cmd
	logs *logBuffer
}

// TestTakeoverAfterKill runs real `microtrigger processor` processes (the
// binary built by the test) on the embedded broker, with the flags and
// defaults of the CLI, under a steady trickle of events, and kills them
// with SIGKILL:
//
//  1. one instance killed and restarted at once with its instance id and
//     volume: it takes its partitions back;
//  2. the same instance killed three times, 3s apart, each time
//     restarted: after the last restart it takes its partitions back;
//  3. the instance killed and not restarted: the other takes its
//     partitions over once its session times out.
//
// Each step awaits the partitions' committed offsets moving again and logs
// how long that took (the README's figures); the test asserts only that it
// happens. No log line may hold a user's address.
func TestTakeoverAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and waits for a session timeout")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "microtrigger")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const parts = 6
	cluster, seeds := kafkatest.Cluster(t, parts)
	addr := broker.Addr(cluster)
	adm := kadm.NewClient(kafkatest.Client(t, seeds...))

	var mu sync.Mutex
	var all []*process
	run := func(id, dir string) *process {
		p := &process{logs: &logBuffer{}}
		p.cmd = exec.Command(bin, "processor", "--brokers="+addr, "--rules=../testdata/rules", "--state-dir="+dir,
			"--transactional-id="+id, "--instance-id="+id, "--metrics.listen=", "--log.format=text")
		p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		all = append(all, p)
		mu.Unlock()
		return p
	}
	kill := func(p *process) {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range all {
			if p.cmd.ProcessState == nil {
				p.cmd.Process.Signal(syscall.SIGTERM)
				p.cmd.Wait()
			}
		}
		for i, p := range all {
			logs := p.logs.String()
			if strings.Contains(logs, "@example.com") {
				t.Errorf("process %d logged an address", i)
			}
			if t.Failed() {
				t.Logf("process %d:\n%s", i, logs)
			}
		}
	})

	// A steady trickle of events on every partition, at the wall clock,
	// until the test ends (bounded: 10 a second).
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	producer := kafkatest.Client(t, seeds...)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			u := fmt.Sprintf("user-%02d", i%60)
			v, _ := json.Marshal(map[string]any{"type": "identify", "userId": u, "messageId": fmt.Sprintf("m-%d", i),
				"timestamp": schema.FormatTime(time.Now()), "traits": map[string]any{"email": u + "@example.com", "email_opt_in": true}})
			producer.Produce(ctx, &kgo.Record{Topic: schema.TopicEvents, Key: []byte(u), Value: v}, nil)
		}
	}()

	const group = "microtrigger-processor"
	// ownedBy returns the partitions the group assigns to a member.
	ownedBy := func(instance string) []int32 {
		dg, err := adm.DescribeGroups(context.Background(), group)
		if err != nil {
			return nil
		}
		var out []int32
		for _, m := range dg[group].Members {
			if m.InstanceID == nil || *m.InstanceID != instance {
				continue
			}
			if a, ok := m.Assigned.AsConsumer(); ok {
				for _, tp := range a.Topics {
					if tp.Topic == schema.TopicEvents {
						out = append(out, tp.Partitions...)
					}
				}
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
		return out
	}
	committed := func() map[int32]int64 {
		out := map[int32]int64{}
		offs, err := adm.FetchOffsets(context.Background(), group)
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
	// awaitCommits waits until every partition in ps has committed past
	// its offset in since, and returns how long that took from start.
	awaitCommits := func(what string, ps []int32, since map[int32]int64, start time.Time) time.Duration {
		t.Helper()
		kafkatest.Eventually(t, 3*time.Minute, what, func() bool {
			now := committed()
			for _, p := range ps {
				if now[p] <= since[p] {
					return false
				}
			}
			return true
		})
		return time.Since(start)
	}

	dirA, dirB := t.TempDir(), t.TempDir()
	a := run("a", dirA)
	run("b", dirB)
	var ofA []int32
	kafkatest.Eventually(t, time.Minute, "both instances own partitions", func() bool {
		ofA = ownedBy("a")
		ofB := ownedBy("b")
		return len(ofA) > 0 && len(ofB) > 0 && len(ofA)+len(ofB) == parts
	})
	awaitCommits("every partition committing", []int32{0, 1, 2, 3, 4, 5}, map[int32]int64{}, time.Now())

	// 1. Killed and restarted at once.
	kill(a)
	before := committed()
	restart := time.Now()
	a = run("a", dirA)
	d1 := awaitCommits("the restarted instance committing its partitions", ofA, before, restart)
	if got := ownedBy("a"); fmt.Sprint(got) != fmt.Sprint(ofA) {
		t.Errorf("the restarted instance owns %v, it owned %v", got, ofA)
	}
	t.Logf("kill -9, restart with the same instance id: partitions %v committing again %v after the restart", ofA, d1.Round(10*time.Millisecond))

	// 2. Killed three times, 3s apart, restarted each time.
	for range 3 {
		kill(a)
		a = run("a", dirA)
		select {
		case <-time.After(3 * time.Second): // a pace, not something to await
		case <-ctx.Done():
		}
	}
	kill(a)
	before = committed()
	restart = time.Now()
	a = run("a", dirA)
	d2 := awaitCommits("the instance killed four times committing its partitions", ofA, before, restart)
	ofA = ownedBy("a")
	t.Logf("four kills 3s apart, each restarted: partitions %v committing again %v after the last restart", ofA, d2.Round(10*time.Millisecond))

	// 3. Killed and not restarted: the other instance takes over.
	kill(a)
	before = committed()
	killed := time.Now()
	d3 := awaitCommits("the surviving instance committing the dead one's partitions", ofA, before, killed)
	if got := ownedBy("b"); len(got) != parts {
		t.Errorf("the survivor owns %v", got)
	}
	t.Logf("kill -9, no restart: partitions %v committed by the survivor %v after the kill", ofA, d3.Round(10*time.Millisecond))
}
