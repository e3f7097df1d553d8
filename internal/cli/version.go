package cli

import (
	"runtime"
	"runtime/debug"
)

// version says which build is running: the stamp main was linked with
// (go build -ldflags "-X main.version=v1.4.0", as `make build` does), else
// the module version the go command recorded (go install
// github.com/microtrigger/microtrigger@v1.4.0), else the VCS revision it
// recorded (a go build in a git checkout; "-dirty" when the tree had
// changes), else "devel".
func version(stamp string, info *debug.BuildInfo) string {
	if stamp != "" {
		return stamp
	}
	if info == nil {
		return "devel"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// versionLine is what --version prints.
func versionLine(stamp string) string {
	info, _ := debug.ReadBuildInfo()
	return "microtrigger " + version(stamp, info) + " (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}
