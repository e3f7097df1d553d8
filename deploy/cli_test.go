package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/microtrigger/microtrigger/internal/cli"
)

// A command line as a deployment artefact writes it: the container's
// arguments (command first, e.g. "processor") and its environment.
type commandLine struct {
	where string // for messages: "StatefulSet microtrigger-sink", "compose service sink"
	args  []string
	env   map[string]string
}

// envPrefix is the prefix of every environment variable the CLI reads:
// MICROTRIGGER_<COMMAND>_<FLAG> for a command's own flags,
// MICROTRIGGER_<FLAG> for the shared ones (--brokers, --log.format, …);
// dots and dashes as underscores.
const envPrefix = "MICROTRIGGER_"

var (
	// helpEnvar finds the variable kingpin prints after each flag's help.
	helpEnvar = regexp.MustCompile(`\(\$(` + envPrefix + `[A-Z0-9_]+)\)`)
	// helpSecretEnvar finds the variables a flag's help names as the
	// alternative to a secret file ("else $MICROTRIGGER_SASL_PASSWORD").
	helpSecretEnvar = regexp.MustCompile(`else \$(` + envPrefix + `[A-Z0-9_]+)`)
)

// checkCommandLine fails t unless the real CLI accepts c (see
// commandLineProblems).
func checkCommandLine(t *testing.T, c commandLine) {
	t.Helper()
	for _, p := range commandLineProblems(t, c) {
		t.Errorf("%s: %s", c.where, p)
	}
}

// commandLineProblems says why the real CLI would not accept c, if it would
// not:
//
//  1. `ARGS --help` exits 0: the command exists and every flag name is known
//     (kingpin refuses an unknown flag or a stray argument before it prints
//     help);
//  2. every MICROTRIGGER_ variable of the environment is one the command
//     reads, as listed by its --help;
//  3. the full command line parses (values of the right type, enums within
//     their choices, required flags present, the environment applied) up to
//     the command's action. To stop there without touching Kafka or the
//     disk, the brokers are left out: the processor's and the sink's actions
//     begin by turning the Kafka flags into client options and stop with
//     "no Kafka brokers", which only a command line that parsed can reach.
//
// t only scopes the environment variables it sets.
func commandLineProblems(t *testing.T, c commandLine) (problems []string) {
	t.Helper()
	if len(c.args) == 0 {
		return []string{"no command line"}
	}
	clearEnv(t)

	help, code, stderr := runCLI(append(append([]string{}, c.args...), "--help"))
	if code != cli.ExitOK {
		return append(problems, fmt.Sprintf("`microtrigger %s --help` exits %d, want 0: %s", strings.Join(c.args, " "), code, stderr))
	}
	known := map[string]bool{}
	for _, m := range helpEnvar.FindAllStringSubmatch(help, -1) {
		known[m[1]] = true
	}
	for _, m := range helpSecretEnvar.FindAllStringSubmatch(help, -1) {
		known[m[1]] = true
	}
	if !known[envPrefix+"BROKERS"] {
		t.Fatalf("%s: the help of %q lists no $%sBROKERS; the way this test reads it is out of date:\n%s", c.where, c.args[0], envPrefix, help)
	}
	for name := range c.env {
		if strings.HasPrefix(name, envPrefix) && !known[name] {
			problems = append(problems, fmt.Sprintf("environment variable %s is read by no flag of `microtrigger %s`", name, c.args[0]))
		}
	}

	var args []string
	for i := 0; i < len(c.args); i++ {
		a := c.args[i]
		if a == "--brokers" {
			i++ // and its value
			continue
		}
		if strings.HasPrefix(a, "--brokers=") {
			continue
		}
		args = append(args, a)
	}
	for name, v := range c.env {
		if name != envPrefix+"BROKERS" {
			t.Setenv(name, v)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing may run for real
	_, code, stderr = runCLIContext(ctx, args)
	if !strings.Contains(stderr, "no Kafka brokers") {
		problems = append(problems, fmt.Sprintf("`microtrigger %s` (brokers left out) does not parse: exit %d: %s", strings.Join(args, " "), code, stderr))
	}
	return problems
}

func runCLI(args []string) (stdout string, code int, stderr string) {
	return runCLIContext(context.Background(), args)
}

func runCLIContext(ctx context.Context, args []string) (string, int, string) {
	var out, errb bytes.Buffer
	code := cli.Main(ctx, args, &out, &errb, cli.Assets{})
	return out.String(), code, errb.String()
}

// clearEnv unsets every MICROTRIGGER_ variable of the test's environment for
// the rest of the test, so that only the artefact's own settings count.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix) {
			t.Setenv(name, "") // restored after the test
			os.Unsetenv(name)
		}
	}
}

// flagValue returns the value of --name in args ("--name=v" or "--name v").
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// setting returns a flag's value from the args, else from its environment
// variable: the command's (MICROTRIGGER_SINK_STATE_DIR), else the shared
// one (MICROTRIGGER_BROKERS). commandLineProblems checks that the
// environment holds no other.
func (c commandLine) setting(name string) (string, bool) {
	if v, ok := flagValue(c.args, name); ok {
		return v, true
	}
	upper := strings.NewReplacer(".", "_", "-", "_", " ", "_").Replace
	for _, n := range []string{envPrefix + strings.ToUpper(upper(c.args[0]+"_"+name)), envPrefix + strings.ToUpper(upper(name))} {
		if v, ok := c.env[n]; ok {
			return v, true
		}
	}
	return "", false
}

func TestCheckCommandLineRefuses(t *testing.T) {
	// The check must catch each of these, for the reason given.
	for _, tc := range []struct {
		c    commandLine
		want string
	}{
		{commandLine{args: []string{"processor", "--rules=r", "--state-dir=s", "--no-such-flag=1"}}, "unknown long flag '--no-such-flag'"},
		{commandLine{args: []string{"processer", "--rules=r", "--state-dir=s"}}, `expected command but got "processer"`},
		{commandLine{args: []string{"processor", "--rules=r", "--state-dir=s", "stray"}}, "unexpected stray"},
		{commandLine{args: []string{"sink", "--state-dir=s", "--transport=pigeon"}}, "enum value must be one of"},
		{commandLine{args: []string{"processor", "--rules=r", "--state-dir=s", "--grace=soon"}}, `invalid duration "soon"`},
		{commandLine{args: []string{"processor", "--rules=r"}}, "'--state-dir' not provided"},
		{commandLine{args: []string{"sink", "--state-dir=s", "--sendgrid.api-key=SG.x"}}, "unknown long flag '--sendgrid.api-key'"},
		{commandLine{args: []string{"sink", "--state-dir=s"}, env: map[string]string{"MICROTRIGGER_SENDGRID_APIKEY": "x"}}, "MICROTRIGGER_SENDGRID_APIKEY is read by no flag"},
		{commandLine{args: []string{"sink", "--state-dir=s"}, env: map[string]string{"MICROTRIGGER_SINK_SENDGRID_TIMEOUT": "long"}}, `invalid duration "long"`},
		{commandLine{args: []string{"sink", "--state-dir=s"}, env: map[string]string{"MICROTRIGGER_INSTANCE_ID": "sink-0"}}, "MICROTRIGGER_INSTANCE_ID is read by no flag"},
		{commandLine{args: []string{"processor", "--rules=r"}, env: map[string]string{"MICROTRIGGER_STATE_DIR": "s"}}, "MICROTRIGGER_STATE_DIR is not read: --state-dir of `microtrigger processor` reads MICROTRIGGER_PROCESSOR_STATE_DIR"},
	} {
		ps := strings.Join(commandLineProblems(t, tc.c), "\n")
		if !strings.Contains(ps, tc.want) {
			t.Errorf("%v %v: problems %q, want one saying %q", tc.c.args, tc.c.env, ps, tc.want)
		}
	}
	checkCommandLine(t, commandLine{
		where: "a good command line",
		args:  []string{"sink", "--brokers", "kafka:9092", "--state-dir=s", "--log.format=json"},
		env:   map[string]string{"MICROTRIGGER_SINK_INSTANCE_ID": "sink-0", "MICROTRIGGER_SENDGRID_API_KEY": "from a Secret"},
	})
}
