package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/microtrigger/microtrigger/internal/telemetry/telemetrytest"
)

const monitoringDir = "monitoring"

// ruleFile is the part of Prometheus's rule file format alerts.yaml uses;
// decoding strictly into it refuses anything else.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func loadRules(t *testing.T) (ruleFile, []byte) {
	t.Helper()
	b := mustRead(t, filepath.Join(monitoringDir, "alerts.yaml"))
	var rf ruleFile
	if err := yaml.UnmarshalStrict(b, &rf); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	return rf, b
}

// dashboard is the part of Grafana's dashboard model the checks read.
type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		GridPos struct {
			H, W, X, Y int
		} `json:"gridPos"`
		Targets []struct {
			Expr         string `json:"expr"`
			LegendFormat string `json:"legendFormat"`
			RefID        string `json:"refId"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(mustRead(t, filepath.Join(monitoringDir, "grafana-dashboard.json")), &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	return d
}

// grafanaVars replaces the dashboard's variables by what Grafana puts in
// their place, so that an expression is plain PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$job", ".+")

// TestAlertRules runs `promtool check rules` on the alerts and `promtool
// test rules` on their unit tests, whose input series fire each alert
// (and leave it silent when it should be).
func TestAlertRules(t *testing.T) {
	telemetrytest.Promtool(t)
	for _, args := range [][]string{
		{"check", "rules", filepath.Join(monitoringDir, "alerts.yaml")},
		{"test", "rules", filepath.Join(monitoringDir, "alerts.test.yaml")},
	} {
		if out, ok := telemetrytest.RunPromtool(t, "", args...); !ok {
			t.Errorf("promtool %s:\n%s", strings.Join(args, " "), out)
		}
	}
	rf, _ := loadRules(t)
	tested := map[string]bool{}
	var tf struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(mustRead(t, filepath.Join(monitoringDir, "alerts.test.yaml")), &tf); err != nil {
		t.Fatal(err)
	}
	for _, c := range tf.Tests {
		for _, a := range c.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				tested[a.Alertname] = true
			}
		}
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if !tested[r.Alert] {
				t.Errorf("alert %s: no test of alerts.test.yaml sees it fire", r.Alert)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: wants a severity label, a summary and a description", r.Alert)
			}
		}
	}
}

// TestDashboard checks the dashboard's shape (panels inside the 24-column
// grid, each with a query and distinct refIds) and has promtool parse
// every query, as recording rules of a scratch rule file.
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard title %q uid %q", d.Title, d.UID)
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range d.Panels {
		if p.GridPos.X < 0 || p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos x=%d w=%d outside the 24 columns", p.Title, p.GridPos.X, p.GridPos.W)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if q.Expr == "" || refs[q.RefID] {
				t.Errorf("panel %q: query %q refId %q (empty or repeated)", p.Title, q.Expr, q.RefID)
			}
			refs[q.RefID] = true
			e, _ := json.Marshal(grafanaVars.Replace(q.Expr))
			n++
			fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", n, e)
		}
	}
	if n < 10 {
		t.Fatalf("only %d queries: the dashboard shows little", n)
	}
	telemetrytest.Promtool(t)
	path := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, ok := telemetrytest.RunPromtool(t, "", "check", "rules", path); !ok {
		t.Errorf("the dashboard's queries do not parse:\n%s", out)
	}
}

var metricName = regexp.MustCompile(`\bmicrotrigger_[a-z0-9_]+\b`)

// queriedMetrics returns every microtrigger metric name the dashboard, the
// alerts and the alerts' tests name, with where each is named.
func queriedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	add := func(where, expr string) {
		for _, n := range metricName.FindAllString(expr, -1) {
			if !slices.Contains(out[n], where) {
				out[n] = append(out[n], where)
			}
		}
	}
	d := loadDashboard(t)
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			add("dashboard panel "+p.Title, q.Expr)
		}
	}
	for _, v := range d.Templating.List {
		b, _ := json.Marshal(v.Query)
		add("dashboard variable "+v.Name, string(b))
	}
	rf, _ := loadRules(t)
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			add("alert "+r.Alert, r.Expr)
		}
	}
	var tf struct {
		Tests []struct {
			Name        string `json:"name"`
			InputSeries []struct {
				Series string `json:"series"`
			} `json:"input_series"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(mustRead(t, filepath.Join(monitoringDir, "alerts.test.yaml")), &tf); err != nil {
		t.Fatal(err)
	}
	for _, c := range tf.Tests {
		for _, s := range c.InputSeries {
			add("alert test "+c.Name, s.Series)
		}
	}
	return out
}

// exported parses a scrape into its metric families, by name.
func exported(t *testing.T, scrape string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(scrape))
	if err != nil {
		t.Fatalf("parse scrape: %v", err)
	}
	return mfs
}

// TestMonitoringQueriesExportedMetrics scrapes a running processor and
// sink and checks that every metric the dashboard, the alerts and the
// alerts' tests name is one of theirs: a histogram's _bucket, _sum and
// _count series count as the histogram. A renamed metric fails here
// rather than leaving a panel empty and an alert silent.
func TestMonitoringQueriesExportedMetrics(t *testing.T) {
	sc := runningScrapes(t)
	mfs := exported(t, sc.processor)
	for n, mf := range exported(t, sc.sink) {
		mfs[n] = mf
	}
	queried := queriedMetrics(t)
	if len(queried) < 20 {
		t.Fatalf("only %d metrics queried: %v", len(queried), queried)
	}
	var names []string
	for n := range queried {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if mfs[n] != nil {
			continue
		}
		found := false
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(n, suffix); ok && mfs[base] != nil && mfs[base].GetType() == dto.MetricType_HISTOGRAM {
				found = true
			}
		}
		if !found {
			t.Errorf("%s, named by %s, is not exported by the processor or the sink", n, strings.Join(queried[n], "; "))
		}
	}
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// that servicemonitor.yaml uses; decoding strictly into it refuses
// anything else.
type serviceMonitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// TestServiceMonitor: the ServiceMonitor selects exactly one Service of
// the manifests, microtrigger-metrics, on a port it has, so that every
// processor and sink pod is scraped once, as the job the alerts group by.
func TestServiceMonitor(t *testing.T) {
	var sm serviceMonitor
	if err := yaml.UnmarshalStrict(mustRead(t, filepath.Join(monitoringDir, "servicemonitor.yaml")), &sm); err != nil {
		t.Fatalf("servicemonitor.yaml: %v", err)
	}
	if sm.APIVersion != "monitoring.coreos.com/v1" || sm.Kind != "ServiceMonitor" || len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("servicemonitor.yaml: %s %s with %d endpoints", sm.APIVersion, sm.Kind, len(sm.Spec.Endpoints))
	}
	m := loadManifests(t)
	sel := labels.SelectorFromSet(sm.Spec.Selector.MatchLabels)
	var selected []string
	for name, svc := range m.services {
		if sel.Matches(labels.Set(svc.Labels)) {
			selected = append(selected, name)
		}
	}
	if len(selected) != 1 || selected[0] != "microtrigger-metrics" {
		t.Fatalf("the ServiceMonitor selects Services %v, want microtrigger-metrics alone (a pod behind two would be scraped twice)", selected)
	}
	ep := sm.Spec.Endpoints[0]
	var port bool
	for _, p := range m.services["microtrigger-metrics"].Spec.Ports {
		port = port || p.Name == ep.Port
	}
	if !port || ep.Path != "/metrics" {
		t.Errorf("endpoint port %q path %q: microtrigger-metrics serves /metrics on port metrics", ep.Port, ep.Path)
	}
}

// renderPrometheusRule wraps alerts.yaml's groups in a PrometheusRule.
func renderPrometheusRule(t *testing.T, alerts []byte) []byte {
	t.Helper()
	var groups struct {
		Groups any `json:"groups"`
	}
	if err := yaml.Unmarshal(alerts, &groups); err != nil {
		t.Fatal(err)
	}
	body, err := yaml.Marshal(map[string]any{
		"apiVersion": "monitoring.coreos.com/v1",
		"kind":       "PrometheusRule",
		"metadata":   map[string]any{"name": "microtrigger", "labels": map[string]string{appLabel: "microtrigger"}},
		"spec":       map[string]any{"groups": groups.Groups},
	})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString("# The alerts of alerts.yaml as a PrometheusRule, for the Prometheus Operator.\n")
	b.WriteString("# Generated from alerts.yaml: do not edit. Regenerate with\n")
	b.WriteString("#   go test ./deploy -run TestPrometheusRule -rewrite\n")
	b.Write(body)
	return b.Bytes()
}

// TestPrometheusRule: prometheusrule.yaml holds alerts.yaml's rules.
func TestPrometheusRule(t *testing.T) {
	_, alerts := loadRules(t)
	want := renderPrometheusRule(t, alerts)
	path := filepath.Join(monitoringDir, "prometheusrule.yaml")
	if *rewrite {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustRead(t, path); !bytes.Equal(got, want) {
		t.Errorf("%s differs from alerts.yaml: run `go test ./deploy -run TestPrometheusRule -rewrite`", path)
	}
}

// TestMonitoringKustomization: the kustomization of monitoring/ lists its
// manifests and generates the dashboard's ConfigMap from the JSON file.
func TestMonitoringKustomization(t *testing.T) {
	var k struct {
		APIVersion         string   `json:"apiVersion"`
		Kind               string   `json:"kind"`
		Resources          []string `json:"resources"`
		ConfigMapGenerator []struct {
			Name    string   `json:"name"`
			Files   []string `json:"files"`
			Options struct {
				DisableNameSuffixHash bool              `json:"disableNameSuffixHash"`
				Labels                map[string]string `json:"labels"`
			} `json:"options"`
		} `json:"configMapGenerator"`
	}
	if err := yaml.UnmarshalStrict(mustRead(t, filepath.Join(monitoringDir, "kustomization.yaml")), &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if want := []string{"servicemonitor.yaml", "prometheusrule.yaml"}; !slices.Equal(k.Resources, want) {
		t.Errorf("resources %v, want %v", k.Resources, want)
	}
	if len(k.ConfigMapGenerator) != 1 || !slices.Equal(k.ConfigMapGenerator[0].Files, []string{"grafana-dashboard.json"}) ||
		k.ConfigMapGenerator[0].Options.Labels["grafana_dashboard"] != "1" {
		t.Errorf("configMapGenerator %+v: want the dashboard, labelled grafana_dashboard=1", k.ConfigMapGenerator)
	}
}
