package processor

import (
	"strings"
	"testing"
	"time"
)

// TestCompactionProblem: a changelog that is not compacted, or whose broker
// may leave earlier values uncompacted longer than the bound (Kafka's
// default max.compaction.lag.ms is unbounded), is refused with what to do.
func TestCompactionProblem(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, c := range []struct {
		policy, lag *string
		want        string // "" for none
	}{
		{policy: str("compact"), lag: str("86400000")},
		{policy: str("compact"), lag: str("3600000")},
		{policy: str("compact,delete"), lag: str("86400000")},
		{policy: str("compact")}, // not reported
		{policy: str("compact"), lag: str("86400001"), want: "max.compaction.lag.ms=86400001"},
		{policy: str("compact"), lag: str("9223372036854775807"), want: "--add-config max.compaction.lag.ms=86400000"},
		{policy: str("compact"), lag: str("soon"), want: "max.compaction.lag.ms=soon"},
		{policy: str("delete"), lag: str("1000"), want: "cleanup.policy=delete: it must be compact"},
	} {
		err := compactionProblem("processor-changelog", c.policy, c.lag, 24*time.Hour)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v %v: %v", *c.policy, c.lag, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: %v, want an error with %q", *c.policy, err, c.want)
		}
	}
}
