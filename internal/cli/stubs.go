package cli

import "github.com/alecthomas/kingpin/v2"

// Commands not built yet register nothing.
func registerRun(*kingpin.Application, *env)       {}
func registerProcessor(*kingpin.Application, *env) {}
func registerSink(*kingpin.Application, *env)      {}
func registerRules(*kingpin.Application, *env)     {}
func registerBacktest(*kingpin.Application, *env)  {}
func registerErase(*kingpin.Application, *env)     {}
