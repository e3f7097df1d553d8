//go:build !faults

package crashpoint

// Armed reports whether reaching point now must crash the process: never,
// in a build without the faults tag.
func Armed(string) bool { return false }

// Hit crashes the process if point is armed: never, in this build.
func Hit(string) {}

// Crash is only called when Armed returned true.
func Crash() {}
