package processor

import (
	"strings"
	"testing"
	"time"
)

// TestCompactionProblem: a changelog that is not compacted, that the broker
// also deletes from by age, or whose broker may leave earlier values
// uncompacted longer than the bound (Kafka's default max.compaction.lag.ms
// is unbounded), is refused with what to do.
func TestCompactionProblem(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, c := range []struct {
		cfg   changelogConfig
		bound time.Duration
		want  string // "" for none
	}{
		{cfg: changelogConfig{policy: str("compact"), lag: str("86400000")}},
		{cfg: changelogConfig{policy: str("compact"), lag: str("3600000")}},
		{cfg: changelogConfig{policy: str("compact,delete"), lag: str("86400000"), retention: str("-1")}},
		{cfg: changelogConfig{policy: str("delete, compact"), retention: str("-1")}},
		{cfg: changelogConfig{policy: str("compact")}}, // lag not reported
		{cfg: changelogConfig{}}, // nothing reported
		{cfg: changelogConfig{policy: str("compact"), lag: str("86400001")}, want: "max.compaction.lag.ms=86400001"},
		{cfg: changelogConfig{policy: str("compact"), lag: str("86400001")}, bound: -1},
		{cfg: changelogConfig{policy: str("compact"), lag: str("9223372036854775807")}, want: "--add-config max.compaction.lag.ms=86400000"},
		{cfg: changelogConfig{policy: str("compact"), lag: str("soon")}, want: "max.compaction.lag.ms=soon"},
		{cfg: changelogConfig{policy: str("delete"), lag: str("1000")}, want: `"processor-changelog" has cleanup.policy=delete: it must be compact`},
		{cfg: changelogConfig{policy: str("delete")}, bound: -1, want: "--add-config cleanup.policy=compact"},
		{cfg: changelogConfig{policy: str("compacted")}, want: "cleanup.policy=compacted: it must be compact"},
		{cfg: changelogConfig{policy: str("compact,delete"), retention: str("604800000")}, want: "cleanup.policy=compact,delete and retention.ms=604800000"},
	} {
		bound := c.bound
		if bound == 0 {
			bound = 24 * time.Hour
		}
		err := compactionProblem("processor-changelog", c.cfg, bound)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.cfg, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want an error with %q", c.cfg, err, c.want)
		}
	}
}
