package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is the instructions from one FROM to the next.
type stage struct {
	from  string // the image, ARGs of the preamble substituted
	name  string // AS name
	instr []instruction
}

func parseDockerfile(t *testing.T, path string) (preamble map[string]string, stages []stage) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ins []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		ins = append(ins, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}

	preamble = map[string]string{}
	expand := regexp.MustCompile(`\$\{?(\w+)\}?`)
	for _, in := range ins {
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			var st stage
			for i := 0; i < len(f); i++ {
				switch {
				case strings.HasPrefix(f[i], "--"):
				case strings.EqualFold(f[i], "AS") && i+1 < len(f):
					st.name = f[i+1]
					i++
				default:
					st.from = expand.ReplaceAllStringFunc(f[i], func(v string) string {
						return preamble[expand.FindStringSubmatch(v)[1]]
					})
				}
			}
			stages = append(stages, st)
		case len(stages) == 0 && in.cmd == "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			preamble[k] = v
		case len(stages) > 0:
			stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, in)
		}
	}
	return preamble, stages
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instr {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func (s stage) last(cmd string) (instruction, bool) {
	all := s.all(cmd)
	if len(all) == 0 {
		return instruction{}, false
	}
	return all[len(all)-1], true
}

func TestDockerfile(t *testing.T) {
	_, stages := parseDockerfile(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	if !regexp.MustCompile(`^golang:1\.26(\.\d+)?-`).MatchString(build.from) {
		t.Errorf("build stage FROM %q, want the golang image pinned to 1.26", build.from)
	}
	var static bool
	for _, in := range build.all("RUN") {
		static = static || strings.Contains(in.args, "CGO_ENABLED=0") && strings.Contains(in.args, "go build")
	}
	if !static {
		t.Errorf("no RUN builds with CGO_ENABLED=0")
	}

	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") {
		t.Errorf("runtime FROM %q, want distroless static (the binary is static)", final.from)
	}
	if u, ok := final.last("USER"); !ok || !regexp.MustCompile(`^[1-9][0-9]*(:[1-9][0-9]*)?$`).MatchString(u.args) {
		t.Errorf("runtime USER %q, want a numeric non-root user (Kubernetes checks runAsNonRoot against it)", u.args)
	}
	e, ok := final.last("ENTRYPOINT")
	var entry []string
	if ok {
		if err := json.Unmarshal([]byte(e.args), &entry); err != nil {
			t.Errorf("ENTRYPOINT %s is not in exec form: %v", e.args, err)
		}
	}
	if !slices.Equal(entry, []string{"microtrigger"}) {
		t.Errorf("ENTRYPOINT %v, want [\"microtrigger\"]", entry)
	}

	copies := map[string]string{} // destination → source
	for _, in := range final.all("COPY") {
		f := strings.Fields(in.args)
		var paths []string
		for _, a := range f {
			if !strings.HasPrefix(a, "--") {
				paths = append(paths, a)
			}
		}
		if len(paths) == 2 {
			copies[paths[1]] = paths[0]
		}
	}
	for dst, src := range map[string]string{
		"/etc/microtrigger/rules":     "testdata/rules",
		"/etc/microtrigger/templates": "testdata/templates",
	} {
		if copies[dst] != src {
			t.Errorf("COPY %s %s missing (have %v)", src, dst, copies)
		}
	}
	if v, ok := final.last("VOLUME"); !ok || !strings.Contains(v.args, "/var/lib/microtrigger") {
		t.Errorf("no VOLUME /var/lib/microtrigger")
	}
	ports := map[string]bool{}
	for _, in := range final.all("EXPOSE") {
		for _, p := range strings.Fields(in.args) {
			ports[p] = true
		}
	}
	for _, p := range []string{"9464", "9465", "8025"} {
		if !ports[p] {
			t.Errorf("port %s is not exposed", p)
		}
	}
}

// The build context is the repository root: .dockerignore must keep what
// the build needs.
func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		p := strings.Trim(strings.TrimSpace(line), "/")
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		for _, needed := range []string{"go.mod", "go.sum", "main.go", "testdata", "testdata/rules", "testdata/templates", "internal", "processor", "sink", "schema",
			"schema/zoneinfo", "schema/zoneinfo/zoneinfo.zip", "*.zip", "*.go", "**"} {
			if p == needed {
				t.Errorf(".dockerignore leaves out %s, which the build needs", line)
			}
		}
	}
}
