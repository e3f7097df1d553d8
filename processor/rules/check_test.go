package rules_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/microtrigger/microtrigger/processor/rules"
)

// TestCheck loads inline rule files and prints what the checker says, as
// `microtrigger rules check` would: every error as file:line:col: message.
//
//	check [templates=a,b] [file=name.yaml]...
//	<files, each introduced by "-- name.yaml --">
func TestCheck(t *testing.T) {
	datadriven.RunTest(t, "testdata/check", func(t *testing.T, d *datadriven.TestData) string {
		if d.Cmd != "check" {
			t.Fatalf("unknown command %s", d.Cmd)
		}
		var opts rules.Options
		for _, a := range d.CmdArgs {
			if a.Key == "templates" {
				opts.Templates = map[string]bool{}
				for _, v := range strings.Split(a.Vals[0], ",") {
					opts.Templates[v] = true
				}
			}
		}
		files, srcs := splitFiles(d.Input)
		p, err := rules.LoadSources(files, srcs, opts)
		if err != nil {
			var list rules.ErrorList
			if !errors.As(err, &list) {
				return "error: " + err.Error() + "\n"
			}
			return err.Error() + "\n"
		}
		return fmt.Sprintf("ok: %d triggers, %d aggregates\n", len(p.Triggers), len(p.Aggregates))
	})
}

// splitFiles splits "-- name --" sections; input without one is a.yaml.
func splitFiles(in string) ([]string, map[string][]byte) {
	var files []string
	srcs := map[string][]byte{}
	name := "a.yaml"
	var cur []string
	flush := func() {
		if len(cur) > 0 || name != "a.yaml" {
			files = append(files, name)
			srcs[name] = []byte(strings.Join(cur, "\n") + "\n")
		}
	}
	for _, line := range strings.Split(in, "\n") {
		if strings.HasPrefix(line, "-- ") && strings.HasSuffix(line, " --") {
			flush()
			name, cur = strings.TrimSuffix(strings.TrimPrefix(line, "-- "), " --"), nil
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return files, srcs
}

func FuzzLoad(f *testing.F) {
	seeds, _ := os.ReadDir("../../testdata/rules")
	for _, s := range seeds {
		b, err := os.ReadFile("../../testdata/rules/" + s.Name())
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("triggers:\n  - name: x\n    intent: high\n    on: [page]\n    when: |\n      event.path ==\n    template: t\n"))
	f.Add([]byte("policy: {quiet_hours: {start: '25:00', end: x}}\n"))
	// Numbers compared and mixed across int and double, and map reads
	// guarded and not.
	f.Add([]byte("triggers:\n  - name: n\n    intent: low\n    on: [page]\n    when: user.agg(\"x\") == 0 && user.views(\"/\") in [1.0, 2.0] && (user.cart.value + 1 > 2.0 ? 1 : 2.0) > 0\n    template: t\n"))
	f.Add([]byte("triggers:\n  - name: m\n    intent: low\n    on: [page]\n    when: has(event.properties.a) && event.properties.a.b == 1 || !(\"k\" in user.traits) || user.traits.k\n    wait: 1h\n    data: {x: 'event.url + entry.properties[\"y\"]'}\n    template: t\n    variants: [{name: a}, {name: b, wait: 2h, steps: [{delay: 1m}], expire_after: 0s}]\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		_, err := rules.LoadSources([]string{"f.yaml"}, map[string][]byte{"f.yaml": src}, rules.Options{})
		if err == nil {
			return
		}
		var list rules.ErrorList
		if !errors.As(err, &list) {
			t.Fatalf("not an ErrorList: %v", err)
		}
		lines := strings.Count(string(src), "\n") + 2
		for _, e := range list {
			if e.Pos.File != "f.yaml" || e.Pos.Line < 0 || e.Pos.Line > lines || e.Msg == "" {
				t.Fatalf("bad position or message: %q (file has %d lines)", e.Error(), lines)
			}
		}
	})
}
