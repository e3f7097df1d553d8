package cli

import "github.com/alecthomas/kingpin/v2"

// registerRules is filled in when the rules command lands.
func registerRules(*kingpin.Application, *env) {}
