package cli

import "github.com/alecthomas/kingpin/v2"

// registerErase is filled in when the erase command lands.
func registerErase(*kingpin.Application, *env) {}
