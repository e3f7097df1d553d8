//go:build !invariants && !race

// Package invariants switches on costly self-checks in test builds, as
// Pebble's invariants tag does. Production builds compile them out.
package invariants

// Enabled is true in builds tagged invariants (make test) or race.
const Enabled = false
