package cli

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"

	"github.com/microtrigger/microtrigger/internal/kafkatest"
)

// flagUse is one flag bound to an environment variable.
type flagUse struct {
	where      string // "" for a global flag, else the command: "rules test"
	name, help string
}

func (u flagUse) String() string { return strings.TrimSpace(u.where + " --" + u.name) }

// envarUses walks every flag of app, global and of every command.
func envarUses(app *kingpin.Application) (uses map[string][]flagUse, unbound []flagUse) {
	uses = map[string][]flagUse{}
	add := func(where string, fs []*kingpin.FlagModel) {
		for _, f := range fs {
			u := flagUse{where, f.Name, f.Help}
			switch {
			case f.Envar != "":
				uses[f.Envar] = append(uses[f.Envar], u)
			case where == "" && (f.Hidden || f.Name == "help" || f.Name == "version"): // kingpin's own
			default:
				unbound = append(unbound, u)
			}
		}
	}
	m := app.Model()
	add("", m.Flags)
	var walk func([]*kingpin.CmdModel)
	walk = func(cs []*kingpin.CmdModel) {
		for _, c := range cs {
			add(c.FullCommand, c.Flags)
			walk(c.Commands)
		}
	}
	walk(m.Commands)
	return uses, unbound
}

// envarConflicts lists the variables bound to flags that do not mean the
// same: flags may share a variable only when they are the same shared flag,
// with the same name and the same help wherever they appear (--brokers).
func envarConflicts(app *kingpin.Application) []string {
	uses, _ := envarUses(app)
	var out []string
	for name, us := range uses {
		for _, u := range us[1:] {
			if u.name != us[0].name || u.help != us[0].help {
				out = append(out, fmt.Sprintf("%s is read by %v and %v, which do not mean the same", name, us[0], u))
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

func testApp() *kingpin.Application {
	return newApp(&env{stdout: io.Discard, stderr: io.Discard})
}

// TestEnvarsMeanOneThing walks every command's flags: no environment
// variable is read by two flags that mean different things, and every flag
// has one.
func TestEnvarsMeanOneThing(t *testing.T) {
	app := testApp()
	for _, c := range envarConflicts(app) {
		t.Error(c)
	}
	uses, unbound := envarUses(app)
	for _, u := range unbound {
		t.Errorf("%v reads no environment variable", u)
	}
	// The check sees the flags: the shared ones are shared, the rest
	// belong to their command.
	for name, want := range map[string]int{"MICROTRIGGER_BROKERS": 4, "MICROTRIGGER_SASL_PASSWORD_FILE": 4, "MICROTRIGGER_LOG_LEVEL": 1,
		"MICROTRIGGER_SINK_FROM": 1, "MICROTRIGGER_BACKTEST_FROM": 1, "MICROTRIGGER_RULES_TEST_TEMPLATES": 1} {
		if got := len(uses[name]); got != want {
			t.Errorf("%s is read by %d flags %v, want %d", name, got, uses[name], want)
		}
	}
}

// TestEnvarConflictsSeen: the check finds what kingpin's DefaultEnvars
// gave the command line before, one variable for the sink's sender and the
// backtest's range start.
func TestEnvarConflictsSeen(t *testing.T) {
	app := kingpin.New("microtrigger", "")
	app.DefaultEnvars()
	var s string
	sink := app.Command("sink", "")
	sink.Flag("from", "Sender of the emails.").StringVar(&s)
	shared(sink.Flag("brokers", "Kafka seed brokers."), "brokers").StringVar(&s)
	bt := app.Command("backtest", "")
	bt.Flag("from", "Start of the range.").StringVar(&s)
	shared(bt.Flag("brokers", "Kafka seed brokers."), "brokers").StringVar(&s)
	if _, err := app.Parse([]string{"sink"}); err != nil { // DefaultEnvars binds at parse
		t.Fatal(err)
	}
	got := strings.Join(envarConflicts(app), "\n")
	if got != "MICROTRIGGER_FROM is read by sink --from and backtest --from, which do not mean the same" &&
		got != "MICROTRIGGER_FROM is read by backtest --from and sink --from, which do not mean the same" {
		t.Errorf("conflicts %q", got)
	}
}

// TestEnvars: the variables reach their command's flags only, and a
// variable of the former names is refused with the name that replaced it.
func TestEnvars(t *testing.T) {
	const rulesDir = "../../processor/backtest/testdata/rules"
	const input = "../../processor/backtest/testdata/clickstream.jsonl"
	closed := kafkatest.ClosedPort(t)
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		says string
	}{
		{"a command's variable reaches its flag", map[string]string{"MICROTRIGGER_BACKTEST_FROM": "yesterday"},
			[]string{"backtest", "--rules", rulesDir, "--input", input, "--out", t.TempDir()}, ExitUsage, `--from "yesterday": want an RFC 3339 time`},
		{"another command's variable does not", map[string]string{"MICROTRIGGER_SINK_FROM": "yesterday", "MICROTRIGGER_SINK_OUT": "elsewhere"},
			[]string{"backtest", "--rules", rulesDir, "--input", input, "--out", t.TempDir(), "--progress", "none"}, ExitOK, "wrote"},
		{"a shared variable reaches its flag", map[string]string{"MICROTRIGGER_BROKERS": closed},
			[]string{"erase", "--user", "u"}, ExitFailures, "brokers unreachable (--brokers " + closed + ")"},
		{"a former name is refused", map[string]string{"MICROTRIGGER_FROM": "2026-03-02T08:00:00Z"},
			[]string{"backtest", "--rules", rulesDir, "--input", input, "--out", t.TempDir()}, ExitUsage,
			"microtrigger backtest: environment variable MICROTRIGGER_FROM is not read: --from of `microtrigger backtest` reads MICROTRIGGER_BACKTEST_FROM"},
		{"a former name of a subcommand", map[string]string{"MICROTRIGGER_JUNIT": "out.xml"},
			[]string{"rules", "test", "../../testdata/ruletests/01-pricing-revisit.yaml"}, ExitUsage,
			"--junit of `microtrigger rules test` reads MICROTRIGGER_RULES_TEST_JUNIT"},
		{"a former name another command had is no concern", map[string]string{"MICROTRIGGER_TRANSPORT": "sendgrid"},
			[]string{"backtest", "--rules", rulesDir, "--input", input, "--out", t.TempDir(), "--progress", "none"}, ExitOK, "wrote"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			code, stdout, stderr := runCLI(t, c.args...)
			if code != c.code || !strings.Contains(stdout+stderr, c.says) {
				t.Errorf("exit %d, want %d and %q:\n%s%s", code, c.code, c.says, stdout, stderr)
			}
		})
	}
}

// TestREADMEListsRenamedEnvars: each row of the README's table of renamed
// variables is true (the former name is MICROTRIGGER_<FLAG>, and each new
// one is read by the flag it names), and every former name that two
// commands shared has a row.
func TestREADMEListsRenamedEnvars(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	uses, _ := envarUses(testApp())
	rows := map[string]string{} // former name → row
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "| `MICROTRIGGER_") || !strings.Contains(l, "` (`") {
			continue
		}
		old := strings.Trim(strings.SplitN(l, "|", 3)[1], " `")
		rows[old] = l
		for _, cell := range strings.Split(strings.SplitN(l, "|", 3)[2], ", ") {
			// `MICROTRIGGER_SINK_FROM` (`sink --from`)
			name, flag, ok := strings.Cut(strings.Trim(cell, " |"), " (")
			name, flag = strings.Trim(name, "`"), strings.Trim(flag, "`)")
			where, fname, _ := strings.Cut(flag, " --")
			if !ok || envName("", fname) != old {
				t.Errorf("README row %q: %q is not a flag whose former variable is %s", l, cell, old)
				continue
			}
			if !slices.Contains(uses[name], flagUse{where, fname, helpOf(uses[name], fname)}) {
				t.Errorf("README row %q: %s is not read by %s --%s", l, name, where, fname)
			}
		}
	}
	commands := map[string]map[string]bool{} // former name → commands whose own flag had it
	for name, us := range uses {
		for _, u := range us {
			if old := envName("", u.name); old != name {
				if commands[old] == nil {
					commands[old] = map[string]bool{}
				}
				commands[old][u.where] = true
			}
		}
	}
	for old, cs := range commands {
		if _, ok := rows[old]; !ok && len(cs) > 1 {
			t.Errorf("README has no row for %s, which %d commands read", old, len(cs))
		}
	}
	if len(rows) == 0 {
		t.Fatal("no table of renamed variables in the README")
	}
}

func helpOf(us []flagUse, name string) string {
	for _, u := range us {
		if u.name == name {
			return u.help
		}
	}
	return ""
}
