package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/alecthomas/kingpin/v2"

	"github.com/microtrigger/microtrigger/processor/rules"
	"github.com/microtrigger/microtrigger/processor/rulestest"
	"github.com/microtrigger/microtrigger/schema/zoneinfo"
)

func registerRules(app *kingpin.Application, e *env) {
	cmd := app.Command("rules", "Check and unit-test rule packs.")

	check := cmd.Command("check", "Load and type-check a rule pack; errors as file:line:col: message.")
	var dir, templates string
	check.Arg("dir", "Rule pack directory.").Required().StringVar(&dir)
	check.Flag("templates", "Template directory; every template a rule names must exist there (default: DIR/../templates when present).").StringVar(&templates)
	check.Action(e.selects(func(context.Context) error {
		if err := e.needDir("rules check", "DIR", dir, aRulePack); err != nil {
			return err
		}
		if templates != "" {
			if err := e.needDir("rules check", "--templates", templates, aTemplates); err != nil {
				return err
			}
		}
		tmpl, err := templateSet(dir, templates)
		if err != nil {
			return err
		}
		pack, err := rules.Load(os.DirFS(dir), rules.Options{Templates: tmpl})
		if err != nil {
			var list rules.ErrorList
			if !errors.As(err, &list) {
				return err
			}
			for _, le := range list {
				le.Pos.File = filepath.Join(dir, le.Pos.File)
				fmt.Fprintln(e.stderr, le.Error())
			}
			fmt.Fprintf(e.stderr, "%d error(s)\n", len(list))
			return failure{ExitFailures}
		}
		fmt.Fprintf(e.stdout, "%s: OK: %d triggers, %d aggregates, %d files\n", dir, len(pack.Triggers), len(pack.Aggregates), len(pack.Files))
		return nil
	}))

	test := cmd.Command("test", "Run promtool-style rule unit tests.")
	var files, runs []string
	var junit string
	test.Arg("file", "Rule test files.").Required().StringsVar(&files)
	test.Flag("run", "Only run tests whose name matches this regular expression (repeatable).").StringsVar(&runs)
	test.Flag("junit", "Also write results as JUnit XML to this file.").StringVar(&junit)
	test.Flag("templates", "Template directory checked against the pack (default: the pack's ../templates when present).").StringVar(&templates)
	test.Action(e.selects(func(ctx context.Context) error {
		var res []*regexp.Regexp
		for _, r := range runs {
			re, err := regexp.Compile(r)
			if err != nil {
				return e.usageError("rules test", "--run %q: %v", r, err)
			}
			res = append(res, re)
		}
		if templates != "" {
			if err := e.needDir("rules test", "--templates", templates, aTemplates); err != nil {
				return err
			}
		}
		for _, path := range files {
			if err := e.needFile("rules test", "FILE", path, aRuleTest); err != nil {
				return err
			}
		}
		var all []rulestest.FileResult
		zones := zoneinfo.New() // one for every file: each zone is loaded once
		for _, path := range files {
			fr := rulestest.FileResult{File: path}
			f, err := rulestest.Load(path)
			if err != nil {
				fr.LoadErr = &rulestest.LoadError{File: path, Err: err}
			} else {
				tmpl, err := templateSet(f.RuleDir, templates)
				if err != nil {
					return err
				}
				fr.Cases, fr.LoadErr = f.Run(ctx, rulestest.Options{Run: res, Templates: tmpl, Zones: zones})
			}
			all = append(all, fr)
			var le *rulestest.LoadError
			if errors.As(fr.LoadErr, &le) {
				fmt.Fprint(e.stderr, le.Format())
				continue
			}
			for i := range fr.Cases {
				r := &fr.Cases[i]
				if r.Passed() {
					fmt.Fprintf(e.stdout, "  PASS %s: %s\n", r.Pos, r.Name)
					continue
				}
				fmt.Fprint(e.stdout, r.Format())
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("not every test ran, and no --junit file was written: %w", ctx.Err())
		}
		if junit != "" {
			if err := os.WriteFile(junit, rulestest.JUnit(all), 0o644); err != nil {
				return fmt.Errorf("write --junit: %w", err)
			}
		}
		summary, ok := testSummary(all)
		fmt.Fprintln(e.stdout, summary)
		if !ok {
			return failure{ExitFailures}
		}
		return nil
	}))
}

// testSummary is the last line of rules test: the tests that ran and
// failed, and the files that did not load, counted apart.
func testSummary(files []rulestest.FileResult) (string, bool) {
	tests, failed, unloaded := 0, 0, 0
	for i := range files {
		if files[i].LoadErr != nil {
			unloaded++
		}
		for j := range files[i].Cases {
			tests++
			if !files[i].Cases[j].Passed() {
				failed++
			}
		}
	}
	if failed == 0 && unloaded == 0 {
		return fmt.Sprintf("SUCCESS: %d tests", tests), true
	}
	var parts []string
	if unloaded > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d files did not load", unloaded, len(files)))
	}
	if failed > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d tests failed", failed, tests))
	} else {
		parts = append(parts, fmt.Sprintf("%d tests passed", tests))
	}
	return "FAILED: " + strings.Join(parts, "; "), false
}

// templateSet lists the template names available to a pack: the files of
// the templates directory, by name without extension. It returns nil (no
// check) when there is no such directory and none was asked for.
func templateSet(ruleDir, dir string) (map[string]bool, error) {
	explicit := dir != ""
	if !explicit {
		dir = filepath.Join(ruleDir, "..", "templates")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read templates: %w", err)
	}
	return templateNames(entries), nil
}

func templateNames(entries []fs.DirEntry) map[string]bool {
	out := map[string]bool{}
	for _, en := range entries {
		n := en.Name()
		if en.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		switch filepath.Ext(n) {
		case ".html", ".tmpl", ".gohtml":
			out[strings.TrimSuffix(n, filepath.Ext(n))] = true
		}
	}
	return out
}
