package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/alecthomas/kingpin/v2"
)

// Every flag can also be set in the environment. The global flags
// (--log.*) and the Kafka connection flags every Kafka-facing command
// shares (--brokers, --tls*, --sasl*) read MICROTRIGGER_<FLAG>; a command's
// own flags read MICROTRIGGER_<COMMAND>_<FLAG> (MICROTRIGGER_SINK_FROM,
// MICROTRIGGER_BACKTEST_FROM, MICROTRIGGER_RULES_TEST_RUN), so that one name
// never means two things: set for one command, it cannot change another.
// Dots and dashes become underscores. The secrets are read from
// MICROTRIGGER_SASL_PASSWORD and MICROTRIGGER_SENDGRID_API_KEY when no
// file is given.

// envPrefix begins the name of every variable the command line reads.
const envPrefix = "MICROTRIGGER"

// envName is the variable of a flag: envName("sink", "sendgrid.rate-limit")
// is MICROTRIGGER_SINK_SENDGRID_RATE_LIMIT; envName("", "brokers") is
// MICROTRIGGER_BROKERS.
func envName(command, flag string) string {
	name := envPrefix + "_"
	if command != "" {
		name += command + "_"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z':
			return r - 'a' + 'A'
		case 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			return r
		}
		return '_'
	}, name+flag)
}

// shared binds a flag that means the same for every command that has it
// to MICROTRIGGER_<FLAG>.
func shared(f *kingpin.FlagClause, name string) *kingpin.FlagClause {
	return f.Envar(envName("", name))
}

// bindEnvars binds each command flag that has no variable yet (every one
// but the shared ones) to MICROTRIGGER_<COMMAND>_<FLAG>.
func bindEnvars(app *kingpin.Application) {
	for _, m := range app.Model().Commands {
		bindCommandEnvars(app.GetCommand(m.Name), m)
	}
}

func bindCommandEnvars(c *kingpin.CmdClause, m *kingpin.CmdModel) {
	for _, f := range m.Flags {
		if f.Envar == "" {
			c.GetFlag(f.Name).Envar(envName(m.FullCommand, f.Name))
		}
	}
	for _, sub := range m.Commands {
		bindCommandEnvars(c.GetCommand(sub.Name), sub)
	}
}

// renamedEnvars returns a message for each variable of the environment
// named MICROTRIGGER_<FLAG> after a flag of the command that reads
// MICROTRIGGER_<COMMAND>_<FLAG> (MICROTRIGGER_FROM for `sink --from`: the
// name it read before each command's flags took the command's name), and
// read by no other flag, naming the one it reads: a renamed setting is
// refused, never silently ignored.
func renamedEnvars(app *kingpin.Application, command string, getenv func(string) string) []string {
	bound := map[string]bool{}
	var cmd *kingpin.CmdModel
	var walk func([]*kingpin.CmdModel)
	walk = func(cs []*kingpin.CmdModel) {
		for _, c := range cs {
			if c.FullCommand == command {
				cmd = c
			}
			for _, f := range c.Flags {
				bound[f.Envar] = true
			}
			walk(c.Commands)
		}
	}
	walk(app.Model().Commands)
	if cmd == nil {
		return nil
	}
	var out []string
	for _, f := range cmd.Flags {
		old := envName("", f.Name)
		if old == f.Envar || bound[old] || getenv(old) == "" {
			continue
		}
		out = append(out, fmt.Sprintf("environment variable %s is not read: --%s of `microtrigger %s` reads %s (a command's own flags read MICROTRIGGER_<COMMAND>_<FLAG>): rename it",
			old, f.Name, command, f.Envar))
	}
	sort.Strings(out)
	return out
}
