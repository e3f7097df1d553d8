package cli

import "github.com/alecthomas/kingpin/v2"

// registerProcessor is filled in when the processor command lands.
func registerProcessor(*kingpin.Application, *env) {}
