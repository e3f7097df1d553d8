package backtest

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
	"github.com/microtrigger/microtrigger/processor/backtest/report"
	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/schema/schematest"
)

// TestHostileEventsLeakNothing backtests the hostile corpus, a sentinel in
// every value and key of every kind of bad event, from a JSONL file and
// from a topic: every refusal is counted under its reason and listed, and
// neither report.json, report.html, the summary table nor the logs hold a
// byte of the sentinel. (commands.jsonl and suppressions.jsonl carry user
// ids by contract; no rule of the pack fires on the corpus.)
func TestHostileEventsLeakNothing(t *testing.T) {
	const sentinel = "SENTINEL-7f3a"
	pack, err := rules.Load(os.DirFS("../../testdata/rules"), rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := schematest.Hostile(sentinel)
	var jsonl bytes.Buffer
	wantRefused := map[string]int64{}
	for _, c := range cases {
		jsonl.Write(c.Raw)
		jsonl.WriteByte('\n')
		if c.Reason != "" {
			wantRefused[string(c.Reason)]++
		}
	}
	input := filepath.Join(t.TempDir(), "hostile.jsonl")
	if err := os.WriteFile(input, jsonl.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, seeds := kafkatest.Cluster(t, 3)
	var recs []*kgo.Record
	for _, c := range cases {
		recs = append(recs, &kgo.Record{Topic: schema.TopicEvents, Key: []byte("k"), Value: c.Raw})
	}
	kafkatest.Produce(t, kafkatest.Client(t, seeds...), recs...)

	for _, src := range []struct {
		name string
		set  func(*Config)
	}{
		{"file", func(c *Config) { c.File = input }},
		{"topic", func(c *Config) { c.Topic, c.Kafka = schema.TopicEvents, seeds }},
	} {
		t.Run(src.name, func(t *testing.T) {
			var logs schematest.Buffer
			cfg := Config{Pack: pack, Rules: "rules", OutDir: t.TempDir(), InMemory: true,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			src.set(&cfg)
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			in := res.Report.Input
			if in.Records != int64(len(cases)) || in.Refused != int64(len(in.Refusals)) {
				t.Errorf("%d records, %d refused, %d refusals listed", in.Records, in.Refused, len(in.Refusals))
			}
			for r, n := range wantRefused {
				if in.RefusedByReason[r] != n {
					t.Errorf("refused as %s: %d, want %d", r, in.RefusedByReason[r], n)
				}
			}
			var summary bytes.Buffer
			if err := report.WriteSummary(&summary, res.Report); err != nil {
				t.Fatal(err)
			}
			outputs := map[string][]byte{"summary": summary.Bytes(), "logs": logs.Bytes()}
			for _, name := range []string{ReportJSONFile, ReportHTMLFile} {
				b, err := os.ReadFile(filepath.Join(cfg.OutDir, name))
				if err != nil {
					t.Fatal(err)
				}
				outputs[name] = b
			}
			var rep report.Report
			if err := json.Unmarshal(outputs[ReportJSONFile], &rep); err != nil || len(rep.Input.Refusals) != len(in.Refusals) {
				t.Fatalf("report.json: %v, %d refusals", err, len(rep.Input.Refusals))
			}
			if !bytes.Contains(outputs[ReportHTMLFile], []byte(string(schema.ReasonAmbiguousKey))) {
				t.Error("report.html lists no refusal: the check proves nothing")
			}
			for name, b := range outputs {
				if schematest.Leaked(b, sentinel) {
					t.Errorf("%s holds the sentinel:\n%s", name, b)
				}
			}
		})
	}
}
