package deploy

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/microtrigger/microtrigger/internal/cli"
	"github.com/microtrigger/microtrigger/sink/render"
)

var rewrite = flag.Bool("rewrite", false, "regenerate the ConfigMaps in k8s/ that are copies of testdata/, and monitoring/prometheusrule.yaml")

const (
	k8sDir   = "k8s"
	repoRoot = ".."
	// appLabel is on every object; componentLabel tells processor from sink.
	appLabel       = "app.kubernetes.io/name"
	componentLabel = "app.kubernetes.io/component"
	// The objects the manifests use but do not hold: created by the operator.
	sendgridSecret = "microtrigger-sendgrid"
)

// manifests are the objects of k8s/, by kind and name.
type manifests struct {
	statefulSets map[string]*appsv1.StatefulSet
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	pdbs         map[string]*policyv1.PodDisruptionBudget
	all          []object
}

type object struct {
	file string
	kind string
	meta *metav1.ObjectMeta
}

// decodeStrict decodes one YAML document into the typed object its
// apiVersion and kind name. Unknown and duplicate fields are errors, as are
// kinds this package does not expect.
func decodeStrict(doc []byte) (any, *metav1.ObjectMeta, string, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, nil, "", err
	}
	kind := tm.APIVersion + " " + tm.Kind
	var obj any
	var meta *metav1.ObjectMeta
	switch kind {
	case "apps/v1 StatefulSet":
		o := &appsv1.StatefulSet{}
		obj, meta = o, &o.ObjectMeta
	case "v1 Service":
		o := &corev1.Service{}
		obj, meta = o, &o.ObjectMeta
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		obj, meta = o, &o.ObjectMeta
	case "policy/v1 PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		obj, meta = o, &o.ObjectMeta
	default:
		return nil, nil, kind, fmt.Errorf("unexpected kind %q", kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, nil, kind, err
	}
	return obj, meta, kind, nil
}

// splitDocuments splits a YAML stream at its "---" lines and drops the
// documents that hold only comments.
func splitDocuments(b []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	flush := func() {
		for _, line := range strings.Split(string(cur), "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				docs = append(docs, cur)
				break
			}
		}
		cur = nil
	}
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if strings.TrimRight(line, " \r\n") == "---" {
			flush()
			continue
		}
		cur = append(cur, line...)
	}
	flush()
	return docs
}

// manifestFiles lists the manifests of k8s/: every YAML file but the
// kustomization.
func manifestFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(k8sDir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) && n != "kustomization.yaml" {
			files = append(files, n)
		}
	}
	return files
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{
		statefulSets: map[string]*appsv1.StatefulSet{},
		services:     map[string]*corev1.Service{},
		configMaps:   map[string]*corev1.ConfigMap{},
		pdbs:         map[string]*policyv1.PodDisruptionBudget{},
	}
	for _, f := range manifestFiles(t) {
		b, err := os.ReadFile(filepath.Join(k8sDir, f))
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocuments(b) {
			obj, meta, kind, err := decodeStrict(doc)
			if err != nil {
				t.Fatalf("%s, document %d: %v", f, i+1, err)
			}
			var dup bool
			switch o := obj.(type) {
			case *appsv1.StatefulSet:
				_, dup = m.statefulSets[o.Name]
				m.statefulSets[o.Name] = o
			case *corev1.Service:
				_, dup = m.services[o.Name]
				m.services[o.Name] = o
			case *corev1.ConfigMap:
				_, dup = m.configMaps[o.Name]
				m.configMaps[o.Name] = o
			case *policyv1.PodDisruptionBudget:
				_, dup = m.pdbs[o.Name]
				m.pdbs[o.Name] = o
			}
			if dup {
				t.Fatalf("%s: a second %s named %q", f, kind, meta.Name)
			}
			m.all = append(m.all, object{file: f, kind: kind, meta: meta})
		}
	}
	return m
}

func TestStrictDecodingRefuses(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {replica: 3}\n", `unknown field "replica"`},
		{"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIP: None, clusterIP: 1.2.3.4}\n", `"clusterIP" already set`},
		{"apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {replicas: three}\n", "cannot unmarshal"},
		{"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n", "unexpected kind"},
	} {
		_, _, _, err := decodeStrict([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one saying %q", tc.doc, err, tc.want)
		}
	}
}

func TestManifests(t *testing.T) {
	m := loadManifests(t)
	if len(m.all) == 0 {
		t.Fatal("no manifests")
	}
	for _, o := range m.all {
		if o.meta.Name == "" {
			t.Errorf("%s: a %s without a name", o.file, o.kind)
		}
		if o.meta.Namespace != "" {
			t.Errorf("%s: %s %s sets namespace %q; the manifests are namespace-agnostic", o.file, o.kind, o.meta.Name, o.meta.Namespace)
		}
		if o.meta.Labels[appLabel] != "microtrigger" {
			t.Errorf("%s: %s %s lacks the label %s: microtrigger", o.file, o.kind, o.meta.Name, appLabel)
		}
	}
	for _, name := range []string{"microtrigger-processor", "microtrigger-sink"} {
		if m.statefulSets[name] == nil {
			t.Errorf("no StatefulSet %s", name)
		}
	}
}

// kustomization is the part of kustomize's format the manifests use;
// decoding strictly into it refuses anything else.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

func TestKustomization(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml is %s %s", k.APIVersion, k.Kind)
	}
	listed := slices.Sorted(slices.Values(k.Resources))
	if files := manifestFiles(t); !slices.Equal(listed, files) {
		t.Errorf("kustomization.yaml lists %v; k8s/ holds %v", listed, files)
	}
	images := map[string]bool{}
	for _, im := range k.Images {
		images[im.Name] = true
	}
	m := loadManifests(t)
	for _, s := range m.statefulSets {
		for _, c := range s.Spec.Template.Spec.Containers {
			if !images[c.Image] {
				t.Errorf("StatefulSet %s: image %q is not set by the kustomization's images", s.Name, c.Image)
			}
		}
	}
}

// component is what the tests know of each StatefulSet.
type component struct {
	statefulSet string
	command     string
	// identityEnv are the variables that must hold the pod name: the
	// processor's transactional id, static group membership.
	identityEnv []string
}

var components = []component{
	{"microtrigger-processor", "processor", []string{envPrefix + "PROCESSOR_TRANSACTIONAL_ID", envPrefix + "PROCESSOR_INSTANCE_ID"}},
	{"microtrigger-sink", "sink", []string{envPrefix + "SINK_INSTANCE_ID"}},
}

// container returns the StatefulSet's one container and its command line,
// with the environment resolved as the kubelet would: the pod name for
// metadata.name, ConfigMap keys from the manifests.
func (m *manifests) container(t *testing.T, s *appsv1.StatefulSet) (*corev1.Container, commandLine) {
	t.Helper()
	cs := s.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("StatefulSet %s: %d containers, want 1", s.Name, len(cs))
	}
	c := &cs[0]
	if len(c.Command) > 0 {
		t.Errorf("StatefulSet %s: command %v replaces the image's entrypoint; set args only", s.Name, c.Command)
	}
	cl := commandLine{where: "StatefulSet " + s.Name, args: c.Args, env: map[string]string{}}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			cl.env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			cl.env[e.Name] = s.Name + "-0"
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm := m.configMaps[ref.Name]
			if cm == nil {
				t.Errorf("StatefulSet %s: env %s reads ConfigMap %s, which the manifests do not hold", s.Name, e.Name, ref.Name)
				continue
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				t.Errorf("StatefulSet %s: env %s reads key %s, which ConfigMap %s lacks", s.Name, e.Name, ref.Key, ref.Name)
			}
			cl.env[e.Name] = v
		case e.ValueFrom.SecretKeyRef != nil:
			cl.env[e.Name] = "from-a-secret"
		default:
			t.Errorf("StatefulSet %s: env %s: unexpected source %+v", s.Name, e.Name, e.ValueFrom)
		}
	}
	return c, cl
}

// mountOf returns the volume mount that holds file (the longest mount path
// above it) and the volume it mounts; the volume is nil for a
// volumeClaimTemplate.
func mountOf(s *appsv1.StatefulSet, c *corev1.Container, file string) (*corev1.VolumeMount, *corev1.Volume) {
	var best *corev1.VolumeMount
	for i := range c.VolumeMounts {
		vm := &c.VolumeMounts[i]
		if (file == vm.MountPath || strings.HasPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/")) &&
			(best == nil || len(vm.MountPath) > len(best.MountPath)) {
			best = vm
		}
	}
	if best == nil {
		return nil, nil
	}
	for i := range s.Spec.Template.Spec.Volumes {
		if v := &s.Spec.Template.Spec.Volumes[i]; v.Name == best.Name {
			return best, v
		}
	}
	return best, nil
}

func isClaimTemplate(s *appsv1.StatefulSet, volume string) bool {
	for _, pvc := range s.Spec.VolumeClaimTemplates {
		if pvc.Name == volume {
			return true
		}
	}
	return false
}

// listenPort returns the port of a listen address such as ":9464".
func listenPort(t *testing.T, where, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s: listen address %q: %v", where, addr, err)
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil || n == 0 {
		t.Fatalf("%s: listen address %q: no fixed port", where, addr)
	}
	return int32(n)
}

// containerPort resolves a probe's or a Service's target port against the
// container's ports.
func containerPort(c *corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

func TestStatefulSets(t *testing.T) {
	m := loadManifests(t)
	for _, comp := range components {
		t.Run(comp.command, func(t *testing.T) {
			s := m.statefulSets[comp.statefulSet]
			if s == nil {
				t.Fatalf("no StatefulSet %s", comp.statefulSet)
			}
			pod := &s.Spec.Template
			sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector)
			if err != nil {
				t.Fatal(err)
			}
			if !sel.Matches(labels.Set(pod.Labels)) || pod.Labels[componentLabel] != comp.command {
				t.Errorf("selector %v does not select the pods %v, or they are not labelled %s: %s", sel, pod.Labels, componentLabel, comp.command)
			}

			c, cl := m.container(t, s)
			if len(cl.args) == 0 || cl.args[0] != comp.command {
				t.Fatalf("args %v do not start with the command %q", cl.args, comp.command)
			}
			checkCommandLine(t, cl)

			// State on the volume claim.
			dir, ok := cl.setting("state-dir")
			if !ok {
				t.Errorf("no --state-dir")
			} else if vm, _ := mountOf(s, c, dir); vm == nil || vm.MountPath != path.Clean(dir) || !isClaimTemplate(s, vm.Name) {
				t.Errorf("--state-dir %s is not the mount path of a volumeClaimTemplate", dir)
			}
			for _, env := range comp.identityEnv {
				if id := cl.env[env]; id != s.Name+"-0" {
					t.Errorf("%s is %q, want the pod name from the downward API", env, id)
				}
			}

			// Probes on the metrics port the args set.
			addr, ok := cl.setting("metrics.listen")
			if !ok {
				t.Fatalf("no --metrics.listen: set it so that probes and Services can be checked")
			}
			metrics := listenPort(t, "--metrics.listen", addr)
			if p, ok := containerPort(c, intstr.FromString("metrics")); !ok || p != metrics {
				t.Errorf("container port named metrics is %d, --metrics.listen serves %d", p, metrics)
			}
			for _, pr := range []struct {
				name  string
				probe *corev1.Probe
				path  string
			}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
				if pr.probe == nil || pr.probe.HTTPGet == nil {
					t.Errorf("no HTTP %s probe", pr.name)
					continue
				}
				if pr.probe.HTTPGet.Path != pr.path {
					t.Errorf("%s probe path %s, want %s", pr.name, pr.probe.HTTPGet.Path, pr.path)
				}
				if p, ok := containerPort(c, pr.probe.HTTPGet.Port); !ok || p != metrics {
					t.Errorf("%s probe port %s is %d, --metrics.listen serves %d", pr.name, pr.probe.HTTPGet.Port.String(), p, metrics)
				}
			}

			// Every file a flag names is on a mounted volume or in the image.
			for _, f := range []string{"rules", "templates", "sendgrid.templates", "sendgrid.api-key-file", "webhook.public-key-file", "tls.ca", "sasl.password-file"} {
				p, ok := cl.setting(f)
				if !ok {
					continue
				}
				vm, v := mountOf(s, c, p)
				switch {
				case vm != nil && v == nil && !isClaimTemplate(s, vm.Name):
					t.Errorf("--%s %s: volume %s is not declared", f, p, vm.Name)
				case vm == nil && !strings.HasPrefix(p, "/etc/microtrigger/"):
					t.Errorf("--%s %s is on no volume and not in the image's /etc/microtrigger", f, p)
				case v != nil && v.ConfigMap != nil:
					cm := m.configMaps[v.ConfigMap.Name]
					if cm == nil {
						t.Errorf("--%s %s: ConfigMap %s is not in the manifests", f, p, v.ConfigMap.Name)
					} else if rel := strings.TrimPrefix(strings.TrimPrefix(p, vm.MountPath), "/"); rel != "" {
						if _, ok := cm.Data[rel]; !ok {
							t.Errorf("--%s %s: ConfigMap %s has no key %s", f, p, cm.Name, rel)
						}
					}
				}
			}

			// Security, resources and shutdown.
			psc := pod.Spec.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
				t.Errorf("the pod does not run as non-root: %+v", psc)
			}
			if psc == nil || psc.FSGroup == nil {
				t.Errorf("no fsGroup: the non-root user may not write its volume")
			}
			csc := c.SecurityContext
			if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
				csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
				csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") {
				t.Errorf("container security context %+v: want a read-only root, no privilege escalation, all capabilities dropped", csc)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("resources %+v: want CPU and memory requests and a memory limit", c.Resources)
			}
			if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || *g < 45 {
				t.Errorf("terminationGracePeriodSeconds %v: want at least 45s to finish a transaction or a SendGrid request", g)
			}

			// The governing Service and the disruption budget.
			svc := m.services[s.Spec.ServiceName]
			if svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("serviceName %q is not a headless Service of the manifests", s.Spec.ServiceName)
			} else if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
				t.Errorf("Service %s does not select the pods", svc.Name)
			}
			var pdb *policyv1.PodDisruptionBudget
			for _, b := range m.pdbs {
				if bs, err := metav1.LabelSelectorAsSelector(b.Spec.Selector); err == nil && bs.Matches(labels.Set(pod.Labels)) {
					pdb = b
				}
			}
			if pdb == nil {
				t.Errorf("no PodDisruptionBudget selects the pods")
			}
		})
	}
}

func TestProcessorVolumesAndRules(t *testing.T) {
	m := loadManifests(t)
	s := m.statefulSets["microtrigger-processor"]
	if r := s.Spec.PersistentVolumeClaimRetentionPolicy; r == nil || r.WhenScaled != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		t.Errorf("the processor keeps the volumes of removed pods; their checkpoints would grow stale (%+v)", r)
	}
	c, cl := m.container(t, s)
	dir, _ := cl.setting("rules")
	vm, v := mountOf(s, c, dir)
	if vm == nil || vm.MountPath != dir || v == nil || v.ConfigMap == nil || v.ConfigMap.Name != "microtrigger-rules" {
		t.Errorf("--rules %s is not the mount of ConfigMap microtrigger-rules", dir)
	}
}

func TestSinkSecrets(t *testing.T) {
	m := loadManifests(t)
	s := m.statefulSets["microtrigger-sink"]
	c, cl := m.container(t, s)
	if tr, _ := cl.setting("transport"); tr != "sendgrid" {
		t.Errorf("--transport %q, want sendgrid", tr)
	}
	for _, f := range []string{"sendgrid.api-key-file", "webhook.public-key-file"} {
		p, ok := cl.setting(f)
		if !ok {
			t.Errorf("no --%s", f)
			continue
		}
		if _, v := mountOf(s, c, p); v == nil || v.Secret == nil || v.Secret.SecretName != sendgridSecret {
			t.Errorf("--%s %s is not a file of the Secret %s", f, p, sendgridSecret)
		}
	}

	// The webhook: the port the args set, a container port, a Service.
	addr, ok := cl.setting("webhook.listen")
	if !ok {
		t.Fatal("no --webhook.listen")
	}
	hook := listenPort(t, "--webhook.listen", addr)
	if p, ok := containerPort(c, intstr.FromString("webhook")); !ok || p != hook {
		t.Errorf("container port named webhook is %d, --webhook.listen serves %d", p, hook)
	}
	svc := m.services["microtrigger-webhook"]
	if svc == nil {
		t.Fatal("no Service microtrigger-webhook")
	}
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service microtrigger-webhook has %d ports, want 1", len(svc.Spec.Ports))
	}
	if p, ok := containerPort(c, svc.Spec.Ports[0].TargetPort); !ok || p != hook {
		t.Errorf("Service microtrigger-webhook targets %d, --webhook.listen serves %d", p, hook)
	}
}

// No secret is ever written into a manifest: not in args, not as a literal
// environment value.
func TestNoSecretInManifests(t *testing.T) {
	m := loadManifests(t)
	for _, s := range m.statefulSets {
		for _, c := range s.Spec.Template.Spec.Containers {
			for _, a := range c.Args {
				if strings.Contains(a, "SG.") || strings.HasPrefix(a, "--sendgrid.api-key=") {
					t.Errorf("StatefulSet %s: arg %q holds a SendGrid key", s.Name, a)
				}
			}
			for _, e := range c.Env {
				upper := strings.ToUpper(e.Name)
				secretish := strings.Contains(upper, "KEY") && !strings.HasSuffix(upper, "_FILE") ||
					strings.Contains(upper, "PASSWORD") && !strings.HasSuffix(upper, "_FILE") ||
					strings.Contains(upper, "SECRET") || strings.Contains(upper, "TOKEN")
				if secretish && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
					t.Errorf("StatefulSet %s: env %s must come from a Secret", s.Name, e.Name)
				}
				if strings.Contains(e.Value, "SG.") {
					t.Errorf("StatefulSet %s: env %s holds a SendGrid key", s.Name, e.Name)
				}
			}
		}
	}
	for _, cm := range m.configMaps {
		for k, v := range cm.Data {
			if strings.Contains(v, "SG.") {
				t.Errorf("ConfigMap %s: %s holds a SendGrid key", cm.Name, k)
			}
		}
	}
}

// Every Service selects pods of the manifests, and every target port is a
// port of each pod it selects.
func TestServices(t *testing.T) {
	m := loadManifests(t)
	for _, svc := range m.services {
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		var selected int
		for _, s := range m.statefulSets {
			if len(svc.Spec.Selector) == 0 || !sel.Matches(labels.Set(s.Spec.Template.Labels)) {
				continue
			}
			selected++
			c, _ := m.container(t, s)
			for _, p := range svc.Spec.Ports {
				if _, ok := containerPort(c, p.TargetPort); !ok {
					t.Errorf("Service %s port %s: target %s is no port of StatefulSet %s", svc.Name, p.Name, p.TargetPort.String(), s.Name)
				}
			}
		}
		if selected == 0 {
			t.Errorf("Service %s selects no pods of the manifests", svc.Name)
		}
	}

	metrics := m.services["microtrigger-metrics"]
	if metrics == nil {
		t.Fatal("no Service microtrigger-metrics")
	}
	if metrics.Annotations["prometheus.io/scrape"] != "true" || metrics.Annotations["prometheus.io/path"] != "/metrics" {
		t.Errorf("Service microtrigger-metrics: annotations %v, want prometheus.io/scrape and path", metrics.Annotations)
	}
	for _, comp := range components {
		s := m.statefulSets[comp.statefulSet]
		if !labels.SelectorFromSet(metrics.Spec.Selector).Matches(labels.Set(s.Spec.Template.Labels)) {
			t.Errorf("Service microtrigger-metrics does not select the pods of %s", s.Name)
		}
	}
}

// generated are the ConfigMaps that copy files of testdata/ (the example
// rule pack and the SendGrid mapping file).
var generated = []struct {
	file, name, src string
	only            string // one file of src; "" for every file
	about           string
}{
	{"rules-configmap.yaml", "microtrigger-rules", "testdata/rules", "", "the rule pack, mounted as the processor's --rules directory"},
	{"sendgrid-configmap.yaml", "microtrigger-sendgrid", "testdata/templates", "sendgrid.yaml", "the SendGrid mapping file of the sink's --sendgrid.templates"},
}

// sourceData reads what a generated ConfigMap must hold, as
// `kubectl create configmap --from-file` would: file name to content.
func sourceData(t *testing.T, src, only string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(repoRoot, src))
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]string{}
	for _, e := range entries {
		if e.IsDir() || (only != "" && e.Name() != only) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		data[e.Name()] = string(b)
	}
	return data
}

func renderConfigMap(t *testing.T, name, src, only, about string, data map[string]string) []byte {
	t.Helper()
	cm := corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{appLabel: "microtrigger"}},
		Data:       data,
	}
	body, err := yaml.Marshal(cm)
	if err != nil {
		t.Fatal(err)
	}
	from := src
	if only != "" {
		from = src + "/" + only
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s%s.\n", strings.ToUpper(about[:1]), about[1:])
	fmt.Fprintf(&b, "# Generated from %s: do not edit. Regenerate with\n", from)
	fmt.Fprintf(&b, "#   go test ./deploy -run TestGeneratedConfigMaps -rewrite\n")
	fmt.Fprintf(&b, "# (the same data as `kubectl create configmap %s --from-file=%s`).\n", name, from)
	b.Write(body)
	return b.Bytes()
}

func TestGeneratedConfigMaps(t *testing.T) {
	for _, g := range generated {
		want := sourceData(t, g.src, g.only)
		p := filepath.Join(k8sDir, g.file)
		if *rewrite {
			if err := os.WriteFile(p, renderConfigMap(t, g.name, g.src, g.only, g.about, want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := loadManifests(t)
	for _, g := range generated {
		want := sourceData(t, g.src, g.only)
		cm := m.configMaps[g.name]
		if cm == nil {
			t.Errorf("no ConfigMap %s (%s)", g.name, g.file)
			continue
		}
		var stale []string
		for k := range want {
			if cm.Data[k] != want[k] {
				stale = append(stale, k)
			}
		}
		for k := range cm.Data {
			if _, ok := want[k]; !ok {
				stale = append(stale, k)
			}
		}
		if len(stale) > 0 {
			sort.Strings(stale)
			t.Errorf("ConfigMap %s differs from %s in %v: run `go test ./deploy -run TestGeneratedConfigMaps -rewrite`", g.name, g.src, stale)
		}
	}
}

// The pack as the processor sees it: the ConfigMap's files in a directory
// next to the image's templates.
func TestRulesConfigMapChecks(t *testing.T) {
	m := loadManifests(t)
	cm := m.configMaps["microtrigger-rules"]
	if cm == nil {
		t.Fatal("no ConfigMap microtrigger-rules")
	}
	etc := t.TempDir()
	rules := filepath.Join(etc, "rules")
	if err := os.Mkdir(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range cm.Data {
		if err := os.WriteFile(filepath.Join(rules, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(filepath.Join(etc, "templates"), os.DirFS(filepath.Join(repoRoot, "testdata/templates"))); err != nil {
		t.Fatal(err)
	}
	out, code, stderr := runCLI([]string{"rules", "check", rules})
	if code != cli.ExitOK {
		t.Errorf("microtrigger rules check on ConfigMap microtrigger-rules: exit %d\n%s%s", code, out, stderr)
	}
}

func TestSendGridConfigMapLoads(t *testing.T) {
	m := loadManifests(t)
	cm := m.configMaps["microtrigger-sendgrid"]
	if cm == nil {
		t.Fatal("no ConfigMap microtrigger-sendgrid")
	}
	if _, err := render.LoadMapping([]byte(cm.Data["sendgrid.yaml"])); err != nil {
		t.Errorf("ConfigMap microtrigger-sendgrid: sendgrid.yaml: %v", err)
	}
}
