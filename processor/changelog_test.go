package processor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/processor"
)

// TestRefusesChangelogNotCompacted starts processors on changelog topics
// the broker would not keep: each stops at start with what to change, and
// one that is compacted starts.
func TestRefusesChangelogNotCompacted(t *testing.T) {
	cluster, seeds := kafkatest.Cluster(t, 2)
	for _, c := range []struct {
		name    string
		configs map[string]string
		maxLag  time.Duration // the check of max.compaction.lag.ms; negative: none
		want    string        // "" for a processor that starts
	}{
		{"created without compaction", nil, 24 * time.Hour,
			`changelog topic "created without compaction" has cleanup.policy=delete: it must be compact`},
		{"no compaction, lag not checked", nil, -1,
			"--add-config cleanup.policy=compact"},
		{"compacted and deleted by age", map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "604800000"}, -1,
			"cleanup.policy=compact,delete and retention.ms=604800000"},
		{"compacted", map[string]string{"cleanup.policy": "compact", "max.compaction.lag.ms": "3600000"}, 24 * time.Hour, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			topic := strings.ReplaceAll(c.name, " ", "-")
			if err := cluster.CreateTopic(topic, 2, c.configs); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(t, seeds, processor.NewManualClock(t0), t.TempDir(), "changelog-"+topic)
			cfg.Topics.Changelog = topic
			cfg.MaxCompactionLag = c.maxLag
			if c.want == "" {
				in := start(t, cfg)
				kafkatest.Eventually(t, 30*time.Second, "processor ready", in.p.Ready)
				return
			}
			p, err := processor.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = p.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), strings.ReplaceAll(c.want, c.name, topic)) {
				t.Fatalf("Run: %v, want an error with %q", err, c.want)
			}
		})
	}
}
