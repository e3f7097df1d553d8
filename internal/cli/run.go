package cli

import "github.com/alecthomas/kingpin/v2"

// registerRun is filled in when the run command lands.
func registerRun(*kingpin.Application, *env) {}
