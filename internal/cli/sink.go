package cli

import "github.com/alecthomas/kingpin/v2"

// registerSink is filled in when the sink command lands.
func registerSink(*kingpin.Application, *env) {}
