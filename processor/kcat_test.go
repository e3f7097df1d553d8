package processor_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/internal/broker"
	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/internal/tooltest"
	"github.com/microtrigger/microtrigger/processor"
	"github.com/microtrigger/microtrigger/schema"
)

// TestKcatInterop has an independent client, kcat (librdkafka), produce an
// event file into the broker with its default partitioner (CRC32, not
// murmur2) and read the send-commands back with read_committed isolation.
func TestKcatInterop(t *testing.T) {
	kcat := tooltest.Need(t, "kcat", "apt-get install kcat")
	cluster, seeds := kafkatest.Cluster(t, 4)
	addr := broker.Addr(cluster)
	clock := processor.NewManualClock(t0.Add(-time.Hour))
	in := start(t, testConfig(t, seeds, clock, t.TempDir(), "kcat-test"))

	var lines []string
	for _, r := range []processor.TimedRecord{
		identify(t, "u1", "ada@example.com"), identify(t, "u2", "bob@example.com"), identify(t, "u3", "cy@example.com"),
		page(t, 0, "u1", "/pricing"), page(t, 0, "u2", "/pricing"), page(t, 0, "u3", "/pricing"),
		page(t, 3*time.Minute, "u1", "/pricing"), page(t, 3*time.Minute, "u2", "/pricing"), page(t, 3*time.Minute, "u3", "/pricing"),
	} {
		lines = append(lines, string(r.Key)+"|"+string(r.Value))
	}
	file := filepath.Join(t.TempDir(), "events.txt")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kcat, "-b", addr, "-P", "-t", schema.TopicEvents, "-K", "|", "-l", file).CombinedOutput()
	if err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}

	ctx := context.Background()
	sim := &processor.Simulation{Processors: []*processor.Processor{in.p}, Clock: clock, Producer: kafkatest.Client(t, seeds...), Topic: schema.TopicEvents}
	if err := sim.AwaitConsumed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sim.Advance(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	out, err = exec.Command(kcat, "-b", addr, "-C", "-t", schema.TopicCommands, "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%k\t%s\n").Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	users := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		key, value, ok := bytes.Cut(line, []byte("\t"))
		if !ok {
			t.Fatalf("kcat line %q", line)
		}
		c, err := schema.UnmarshalCommand(value)
		if err != nil {
			t.Fatal(err)
		}
		if c.UserID != string(key) || c.Template != "pricing-help" || !c.SendAt.Equal(t0.Add(13*time.Minute)) {
			t.Errorf("command %+v keyed %q", c, key)
		}
		users[c.UserID] = true
	}
	if len(users) != 3 {
		t.Fatalf("kcat read commands for %v, want u1, u2 and u3", users)
	}
}
