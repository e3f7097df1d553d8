package deploy

import (
	"context"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/microtrigger/microtrigger/schema"
)

// loadCompose loads ../docker-compose.yml as `docker compose` would
// (schema validation, interpolation, merge keys, defaults), with an empty
// environment so that the test's own does not count.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := composecli.NewProjectOptions(
		[]string{filepath.Join(repoRoot, "docker-compose.yml")},
		composecli.WithWorkingDirectory(repoRoot),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %s", name)
	}
	return s
}

func TestComposeServices(t *testing.T) {
	p := loadCompose(t)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range p.Services {
			if !yield(n) {
				return
			}
		}
	})
	if want := []string{"kafka", "processor", "sink", "topics"}; !slices.Equal(names, want) {
		t.Errorf("services %v, want %v", names, want)
	}

	kafka := service(t, p, "kafka")
	if !strings.HasPrefix(kafka.Image, "apache/kafka:") {
		t.Errorf("kafka image %q, want apache/kafka", kafka.Image)
	}
	if roles := kafka.Environment["KAFKA_PROCESS_ROLES"]; roles == nil || !strings.Contains(*roles, "controller") {
		t.Errorf("kafka is not in KRaft mode: KAFKA_PROCESS_ROLES %v", roles)
	}
	for k := range kafka.Environment {
		if strings.Contains(k, "ZOOKEEPER") {
			t.Errorf("kafka: %s; KRaft needs no ZooKeeper", k)
		}
	}
	if kafka.HealthCheck == nil || len(kafka.HealthCheck.Test) == 0 {
		t.Errorf("kafka has no healthcheck")
	}

	dependsOn := func(s types.ServiceConfig, on, condition string) {
		t.Helper()
		if d, ok := s.DependsOn[on]; !ok || d.Condition != condition {
			t.Errorf("%s: depends_on %s %+v, want condition %s", s.Name, on, d, condition)
		}
	}
	dependsOn(service(t, p, "topics"), "kafka", types.ServiceConditionHealthy)

	for _, name := range []string{"processor", "sink"} {
		s := service(t, p, name)
		dependsOn(s, "topics", types.ServiceConditionCompletedSuccessfully)
		if s.Build == nil || filepath.Clean(s.Build.Context) != mustAbs(t, repoRoot) || s.Build.Dockerfile != "deploy/Dockerfile" {
			t.Errorf("%s: build %+v, want deploy/Dockerfile from the repository root", name, s.Build)
		}
		// The healthchecks run busybox's wget: the image must be built on a
		// base that has it, through the Dockerfile's BASE argument.
		if s.HealthCheck != nil && len(s.HealthCheck.Test) > 1 && strings.HasPrefix(s.HealthCheck.Test[1], "/busybox/") {
			preamble, _ := parseDockerfile(t, "Dockerfile")
			base := s.Build.Args["BASE"]
			if _, ok := preamble["BASE"]; !ok || base == nil || !strings.Contains(*base, ":debug") {
				t.Errorf("%s: the healthcheck runs %s, but the image is not built on a distroless debug base through the build arg BASE", name, s.HealthCheck.Test[1])
			}
		}
		if g := s.StopGracePeriod; g == nil || time.Duration(*g) < 45*time.Second {
			t.Errorf("%s: stop_grace_period %v: want at least 45s to finish a transaction or a request", name, g)
		}
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// composeCommandLine is a service's command line, its environment included.
func composeCommandLine(t *testing.T, s types.ServiceConfig) commandLine {
	t.Helper()
	if len(s.Entrypoint) > 0 {
		t.Errorf("%s: entrypoint %v replaces the image's", s.Name, s.Entrypoint)
	}
	cl := commandLine{where: "compose service " + s.Name, args: s.Command, env: map[string]string{}}
	for k, v := range s.Environment {
		if v != nil {
			cl.env[k] = *v
		}
	}
	return cl
}

func TestComposeCommandLines(t *testing.T) {
	p := loadCompose(t)
	for _, name := range []string{"processor", "sink"} {
		t.Run(name, func(t *testing.T) {
			s := service(t, p, name)
			cl := composeCommandLine(t, s)
			if len(cl.args) == 0 || cl.args[0] != name {
				t.Fatalf("command %v does not start with %q", cl.args, name)
			}
			checkCommandLine(t, cl)

			// State on a named volume.
			dir, ok := cl.setting("state-dir")
			if !ok {
				t.Fatal("no --state-dir")
			}
			var onVolume bool
			for _, v := range s.Volumes {
				if v.Type == types.VolumeTypeVolume && v.Target == path.Clean(dir) {
					_, onVolume = p.Volumes[v.Source]
				}
			}
			if !onVolume {
				t.Errorf("--state-dir %s is not the target of a named volume", dir)
			}

			// The healthcheck asks /readyz on the port the command sets.
			addr, ok := cl.setting("metrics.listen")
			if !ok {
				t.Fatal("no --metrics.listen")
			}
			port := listenPort(t, "--metrics.listen", addr)
			want := "http://127.0.0.1:" + strconv.Itoa(int(port)) + "/readyz"
			if s.HealthCheck == nil || !slices.Contains(s.HealthCheck.Test, want) {
				t.Errorf("healthcheck %v does not ask %s", s.HealthCheck, want)
			}
			var published bool
			for _, pc := range s.Ports {
				published = published || pc.Target == uint32(port)
			}
			if !published {
				t.Errorf("metrics port %d is not published", port)
			}
		})
	}
	sink := composeCommandLine(t, service(t, p, "sink"))
	if tr, ok := sink.setting("transport"); ok && tr != "console" {
		t.Errorf("sink --transport %s; docker compose up prints emails (console)", tr)
	}
	proc := composeCommandLine(t, service(t, p, "processor"))
	if id, _ := proc.setting("transactional-id"); id == "" {
		t.Errorf("processor: no --transactional-id; the default follows the container's hostname, which changes when it is recreated")
	}
	for _, c := range []struct {
		name string
		cl   commandLine
	}{{"processor", proc}, {"sink", sink}} {
		if id, _ := c.cl.setting("instance-id"); id == "" {
			t.Errorf("%s: no --instance-id; a restarted container would rejoin as a new member and wait for the old one's session to expire", c.name)
		}
	}
}

// topicSpec is what the topics service creates for one topic.
type topicSpec struct {
	partitions int
	configs    []string
}

// composeTopics reads the topics service's script: one `create` per topic,
// with the kafka-topics.sh flags --topic, --partitions and --config.
func composeTopics(t *testing.T, p *types.Project) map[string]topicSpec {
	t.Helper()
	s := service(t, p, "topics")
	script := strings.Join(s.Command, "\n")
	if !strings.Contains(script, "kafka-topics.sh") {
		t.Fatalf("topics: the script does not run kafka-topics.sh:\n%s", script)
	}
	topics := map[string]topicSpec{}
	for _, line := range strings.Split(script, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "create" {
			continue
		}
		var name string
		var spec topicSpec
		for i := 1; i+1 < len(f); i += 2 {
			switch f[i] {
			case "--topic":
				name = f[i+1]
			case "--partitions":
				n, err := strconv.Atoi(f[i+1])
				if err != nil {
					t.Fatalf("topics: %q: %v", line, err)
				}
				spec.partitions = n
			case "--config":
				spec.configs = append(spec.configs, f[i+1])
			default:
				t.Fatalf("topics: %q: unexpected %s", line, f[i])
			}
		}
		if name == "" || spec.partitions == 0 {
			t.Fatalf("topics: %q: want --topic NAME --partitions N", line)
		}
		topics[name] = spec
	}
	return topics
}

func TestComposeTopics(t *testing.T) {
	topics := composeTopics(t, loadCompose(t))
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range topics {
			if !yield(n) {
				return
			}
		}
	})
	want := slices.Sorted(slices.Values([]string{
		schema.TopicEvents, schema.TopicCommands, schema.TopicEventsDLQ,
		schema.TopicCommandsDLQ, schema.TopicChangelog, schema.TopicSinkChangelog, schema.TopicSinkOutcomes,
	}))
	if !slices.Equal(names, want) {
		t.Fatalf("topics %v, want %v", names, want)
	}
	if n := topics[schema.TopicEvents].partitions; n != 12 {
		t.Errorf("%s has %d partitions, want 12", schema.TopicEvents, n)
	}
	for changelog, of := range map[string]string{
		schema.TopicChangelog:     schema.TopicEvents,
		schema.TopicSinkChangelog: schema.TopicCommands,
	} {
		if topics[changelog].partitions != topics[of].partitions {
			t.Errorf("%s has %d partitions, %s %d: a changelog is co-partitioned with the topic it follows",
				changelog, topics[changelog].partitions, of, topics[of].partitions)
		}
		if !slices.Contains(topics[changelog].configs, "cleanup.policy=compact") {
			t.Errorf("%s is not compacted: %v", changelog, topics[changelog].configs)
		}
	}
	// The webhook's records reach the sink owning their command by the
	// key's partition: the same count as send-commands.
	if o, c := topics[schema.TopicSinkOutcomes].partitions, topics[schema.TopicCommands].partitions; o != c {
		t.Errorf("%s has %d partitions, %s %d: they are co-partitioned", schema.TopicSinkOutcomes, o, schema.TopicCommands, c)
	}
	for name, spec := range topics {
		if name != schema.TopicChangelog && name != schema.TopicSinkChangelog && len(spec.configs) > 0 {
			t.Errorf("%s: unexpected configs %v", name, spec.configs)
		}
	}
}
