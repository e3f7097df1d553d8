// Package zoneinfo is the IANA time zone database that microtrigger decides
// in: a copy of the Go toolchain's lib/time/zoneinfo.zip, embedded in the
// binary. Quiet hours and frequency caps count local days, weeks and hours
// in the user's zone; reading those rules from the host (time.LoadLocation
// tries /usr/share/zoneinfo first) would let a backtest on a laptop and the
// processor in a distroless container decide differently for the same
// user. Here the answer depends on the build only.
//
// [Known] says whether a name is a zone of the database without loading
// it, for validation (schema.CheckTimezone). A [DB] loads zones by name and
// keeps what it loaded; the engine (processor/engine) receives one through
// its options, and each driver shares one among all its engines.
//
// The package does no I/O and reads nothing from the host or the
// environment (ZONEINFO included). It does not decide what a zone is used
// for, nor which zone a user has: state and policy do.
//
// # Refreshing
//
// `make tzdata` copies zoneinfo.zip from the Go toolchain in use and runs
// `go generate`, which rewrites zones.go (the names [Known] accepts) from
// the zip; a test fails when the two disagree.
package zoneinfo
