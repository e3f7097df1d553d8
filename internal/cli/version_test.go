package cli

import (
	"bytes"
	"context"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "3cafcd4a9e1f7b2c5d6e8f90a1b2c3d4e5f60718"
	for _, c := range []struct {
		name  string
		stamp string
		info  *debug.BuildInfo
		want  string
	}{
		{"stamp wins", "v1.4.0", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.0"}, Settings: vcs(rev, "false")}, "v1.4.0"},
		{"module version", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.0"}, Settings: vcs(rev, "false")}, "v1.3.0"},
		{"revision", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "false")}, "3cafcd4a9e1f"},
		{"modified tree", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "true")}, "3cafcd4a9e1f-dirty"},
		{"nothing recorded", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
		{"no build info", "", nil, "devel"},
	} {
		if got := version(c.stamp, c.info); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"--version"}, &out, &errb, Assets{Version: "v9.8.7"})
	if code != ExitOK || !strings.HasPrefix(out.String(), "microtrigger v9.8.7 (go1.") || errb.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	// Without a stamp it says what the build information holds.
	out.Reset()
	if code := Main(context.Background(), []string{"--version"}, &out, &errb, Assets{}); code != ExitOK || !strings.HasPrefix(out.String(), "microtrigger ") {
		t.Errorf("exit %d, stdout %q", code, out.String())
	}
}

// TestHelpOnce: --help prints the usage once (the parse goes on after
// kingpin has asked to exit).
func TestHelpOnce(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"processor", "--help"}, {"help", "sink"}} {
		var out, errb bytes.Buffer
		code := Main(context.Background(), args, &out, &errb, Assets{})
		if n := strings.Count(out.String(), "usage: microtrigger"); code != ExitOK || n != 1 {
			t.Errorf("%v: exit %d, usage printed %d times", args, code, n)
		}
	}
}
