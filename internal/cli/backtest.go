package cli

import "github.com/alecthomas/kingpin/v2"

// registerBacktest is filled in when the backtest command lands.
func registerBacktest(*kingpin.Application, *env) {}
