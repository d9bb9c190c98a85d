package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/pulse-knative/pulse/internal/pulsetest"
)

// monitoringDir holds the PrometheusRule and the dashboard, Kubernetes objects applied with the
// rest of config/; rulesDir the same rules as a plain rule file and promtool's tests of them,
// kept out of config/ because they are not Kubernetes objects.
const (
	monitoringDir = "../../config/monitoring"
	rulesDir      = "testdata"
)

// prometheusBinary returns the path of a program of Debian's prometheus package. Without it
// the test is skipped, or failed when CI=true: CI must install the package.
func prometheusBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (apt-get install prometheus): %v", name, err)
		}
		t.Skipf("%s not found (apt-get install prometheus): %v", name, err)
	}
	return path
}

// ruleGroups reads the groups of a rule file, or of the spec of a PrometheusRule.
func ruleGroups(t testing.TB, path string) []any {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(b, &doc))
	if spec, ok := doc["spec"].(map[string]any); ok {
		doc = spec
	}
	groups, ok := doc["groups"].([]any)
	require.True(t, ok, "%s has no groups", path)
	return groups
}

// ruleExpressions returns every alert's expression in rules.yml, by alert name.
func ruleExpressions(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, g := range ruleGroups(t, filepath.Join(rulesDir, "rules.yml")) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			rule := r.(map[string]any)
			out[fmt.Sprint(rule["alert"])] = fmt.Sprint(rule["expr"])
		}
	}
	require.NotEmpty(t, out)
	return out
}

// panelQuery is one PromQL expression of a dashboard panel.
type panelQuery struct {
	panel string
	expr  string
}

// dashboardQueries returns every panel target's expression, with Grafana's $__rate_interval
// replaced by a range Prometheus accepts.
func dashboardQueries(t testing.TB, rateInterval string) []panelQuery {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(monitoringDir, "grafana-dashboard.yaml"))
	require.NoError(t, err)
	var configMap struct {
		Data map[string]string `yaml:"data"`
	}
	require.NoError(t, yaml.Unmarshal(b, &configMap))
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal([]byte(configMap.Data["pulse.json"]), &dash), "data[pulse.json] of the dashboard ConfigMap")
	var out []panelQuery
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, target := range p.Targets {
			require.NotEmpty(t, target.Expr, "panel %q", p.Title)
			out = append(out, panelQuery{p.Title, strings.ReplaceAll(target.Expr, "$__rate_interval", rateInterval)})
		}
	}
	return out
}

func TestPrometheusRuleMatchesRulesFile(t *testing.T) {
	t.Parallel()
	require.Equal(t, ruleGroups(t, filepath.Join(rulesDir, "rules.yml")),
		ruleGroups(t, filepath.Join(monitoringDir, "prometheusrule.yaml")))
}

func TestPromtoolChecksRules(t *testing.T) {
	t.Parallel()
	promtool := prometheusBinary(t, "promtool")

	// The PrometheusRule's spec, as the operator hands it to Prometheus.
	spec, err := yaml.Marshal(map[string]any{"groups": ruleGroups(t, filepath.Join(monitoringDir, "prometheusrule.yaml"))})
	require.NoError(t, err)
	fromCR := filepath.Join(t.TempDir(), "prometheusrule-spec.yaml")
	require.NoError(t, os.WriteFile(fromCR, spec, 0o644))

	for _, args := range [][]string{
		{"check", "rules", filepath.Join(rulesDir, "rules.yml")},
		{"check", "rules", fromCR},
		// Every alert, firing and not firing (rules_test.yml).
		{"test", "rules", filepath.Join(rulesDir, "rules_test.yml")},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	}
}

func TestPromtoolChecksMetrics(t *testing.T) {
	t.Parallel()
	promtool := prometheusBinary(t, "promtool")
	b := setup(t)
	b.fixture(t)
	text := scrapeText(t, serve(t, b.exporter()), nil)

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
	require.Empty(t, strings.TrimSpace(string(out)), "promtool check metrics found problems")
}

// exportedSeries returns the label sets of every sample of a scrape by sample name, as PromQL
// sees them: a histogram's as name_bucket, name_sum and name_count.
func exportedSeries(families map[string]*dto.MetricFamily) map[string][]labels.Labels {
	out := map[string][]labels.Labels{}
	add := func(name string, pairs []*dto.LabelPair, extra ...string) {
		b := labels.NewBuilder(labels.EmptyLabels())
		for _, p := range pairs {
			b.Set(p.GetName(), p.GetValue())
		}
		for i := 0; i < len(extra); i += 2 {
			b.Set(extra[i], extra[i+1])
		}
		b.Set(labels.MetricName, name)
		out[name] = append(out[name], b.Labels())
	}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			if mf.GetType() != dto.MetricType_HISTOGRAM {
				add(name, m.GetLabel())
				continue
			}
			for _, bk := range m.GetHistogram().GetBucket() {
				add(name+"_bucket", m.GetLabel(), "le", strconv.FormatFloat(bk.GetUpperBound(), 'g', -1, 64))
			}
			add(name+"_bucket", m.GetLabel(), "le", "+Inf")
			add(name+"_sum", m.GetLabel())
			add(name+"_count", m.GetLabel())
		}
	}
	return out
}

// checkSelectors parses expr and checks that each series it selects is one the scrape holds:
// the metric exists and some series of it matches every matcher, the target's own job and
// instance labels aside. up is Prometheus's own and must name the pulse job. It returns the
// metric names expr selects.
func checkSelectors(t *testing.T, where, expr string, series map[string][]labels.Labels) []string {
	t.Helper()
	parsed, err := parser.ParseExpr(expr)
	require.NoError(t, err, "%s: %s", where, expr)
	var names []string
	parser.Inspect(parsed, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		require.NotEmpty(t, vs.Name, "%s: a selector without a metric name in %s", where, expr)
		names = append(names, vs.Name)
		if vs.Name == "up" {
			require.Contains(t, vs.String(), `job="pulse"`, "%s: up must select the pulse job", where)
			return nil
		}
		candidates, ok := series[vs.Name]
		require.True(t, ok, "%s: %s is not a metric the function exports (in %s)", where, vs.Name, expr)
		for _, s := range candidates {
			if matchesAll(vs.LabelMatchers, s) {
				return nil
			}
		}
		t.Errorf("%s: no exported series matches %s", where, vs)
		return nil
	})
	return names
}

func matchesAll(matchers []*labels.Matcher, s labels.Labels) bool {
	for _, m := range matchers {
		if m.Name == "job" || m.Name == "instance" {
			continue
		}
		if !m.Matches(s.Get(m.Name)) {
			return false
		}
	}
	return true
}

func TestExpressionsNameExportedMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fixture(t)
	families := scrape(t, serve(t, b.exporter()), nil)
	series := exportedSeries(families)

	for alert, expr := range ruleExpressions(t) {
		checkSelectors(t, "alert "+alert, expr, series)
	}
	used := map[string]bool{}
	for _, q := range dashboardQueries(t, "5m") {
		for _, name := range checkSelectors(t, "panel "+q.panel, q.expr, series) {
			used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")] = true
		}
	}
	// And the dashboard shows every family Pulse exports, but the old system's names, kept
	// for the dashboards operators already have: ours shows their new names.
	for name := range families {
		if strings.HasPrefix(name, "pulse_") && name != "pulse_celery_queue_length" {
			require.True(t, used[name], "no dashboard panel shows %s", name)
		}
	}
}

// prometheus is a Prometheus server a test started.
type prometheus struct {
	url string
}

// startPrometheus runs Prometheus with config (a prometheus.yml) in a temporary directory, on
// a free port of 127.0.0.1, waits until it is ready and stops it when the test ends.
func startPrometheus(t *testing.T, config string) *prometheus {
	t.Helper()
	bin := prometheusBinary(t, "prometheus")
	dir := t.TempDir()
	configFile := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(configFile, []byte(config), 0o644))

	var lastErr error
	// Another process may take the free port before Prometheus binds it: try another.
	for range 3 {
		addr := pulsetest.FreeAddr(t)

		var logs bytes.Buffer
		cmd := exec.Command(bin, "--config.file="+configFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr, "--log.level=warn")
		cmd.Stdout, cmd.Stderr = &logs, &logs
		require.NoError(t, cmd.Start())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		p := &prometheus{url: "http://" + addr}
		if lastErr = p.waitReady(exited); lastErr == nil {
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(30 * time.Second):
					_ = cmd.Process.Kill()
					<-exited
				}
			})
			return p
		}
		_ = cmd.Process.Kill()
		<-exited
		lastErr = fmt.Errorf("%w\n%s", lastErr, logs.String())
	}
	t.Fatalf("start Prometheus: %v", lastErr)
	return nil
}

// waitReady waits until the server answers /-/ready, or exits.
func (p *prometheus) waitReady(exited <-chan error) error {
	deadline := time.After(60 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("prometheus exited: %v", err)
		case <-deadline:
			return errors.New("prometheus not ready after 60s")
		case <-tick.C:
		}
	}
}

// get fetches an API path and decodes its data.
func (p *prometheus) get(t *testing.T, path string, query url.Values, data any) {
	t.Helper()
	resp, err := http.Get(p.url + path + "?" + query.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var answer struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &answer), "%s", body)
	require.Equal(t, "success", answer.Status, "%s %v: %s", path, query, answer.Error)
	require.NoError(t, json.Unmarshal(answer.Data, data))
}

// sample is one element of an instant vector.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query answers an instant query; it requires a vector or scalar.
func (p *prometheus) query(t *testing.T, expr string) []sample {
	t.Helper()
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	p.get(t, "/api/v1/query", url.Values{"query": {expr}}, &data)
	switch data.ResultType {
	case "vector":
		var out []sample
		require.NoError(t, json.Unmarshal(data.Result, &out))
		return out
	case "scalar":
		var v [2]any
		require.NoError(t, json.Unmarshal(data.Result, &v))
		return []sample{{Value: v}}
	}
	t.Fatalf("%s: result type %s", expr, data.ResultType)
	return nil
}

// hasData returns nil when some sample of samples is a number.
func hasData(samples []sample) error {
	for _, s := range samples {
		v, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		if err == nil && !math.IsNaN(v) {
			return nil
		}
	}
	return fmt.Errorf("%d samples, none a number: %v", len(samples), samples)
}

func TestPrometheusAnswersEveryPanel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.fixture(t)
	target, err := url.Parse(serve(t, b.exporter()))
	require.NoError(t, err)
	rules, err := filepath.Abs(filepath.Join(rulesDir, "rules.yml"))
	require.NoError(t, err)
	prom := startPrometheus(t, fmt.Sprintf(`
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: pulse
    metrics_path: %s
    static_configs:
      - targets: [%q]
`, rules, target.Path, target.Host))

	waitFor(t, "Prometheus to scrape the metrics function", func() error {
		return hasData(prom.query(t, `up{job="pulse"} == 1`))
	})

	// The old exporter's queue length, as its alert rule asked for it, reads what the new name
	// reads, per queue: every series of one has its twin in the other.
	waitFor(t, "the old queue length name to match the new one", func() error {
		for _, expr := range []string{
			`pulse_celery_queue_length{queue_name="high_priority"} > 3`,
			`pulse_celery_queue_length != on(queue_name) pulse_queue_length`,
			`pulse_queue_length unless on(queue_name) pulse_celery_queue_length`,
		} {
			got := prom.query(t, expr)
			if strings.Contains(expr, "> 3") {
				if len(got) != 1 || fmt.Sprint(got[0].Value[1]) != "4" {
					return fmt.Errorf("%s: got %v, want the high queue's 4", expr, got)
				}
			} else if len(got) != 0 {
				return fmt.Errorf("%s: got %v, want nothing", expr, got)
			}
		}
		return nil
	})

	// Deliveries after the first scrape, so that rates and latency percentiles have data.
	ctx := context.Background()
	for _, latency := range []time.Duration{time.Second, 3 * time.Second, 20 * time.Second} {
		require.NoError(t, b.recorder.Attempt(ctx, "webhook", "high", "delivered", latency, true))
	}
	require.NoError(t, b.recorder.Attempt(ctx, "push", "low", "transient", 0, false))

	for _, q := range dashboardQueries(t, "1m") {
		waitFor(t, fmt.Sprintf("data for panel %q: %s", q.panel, q.expr), func() error {
			return hasData(prom.query(t, q.expr))
		})
	}

	// The rules evaluate against the real series without errors, and exactly the alerts the
	// fixture calls for are on their way: failure rates of 25% (email) and 100% (sms), two
	// past-due notifications, and the primary email account's open breaker. Their "for" keeps
	// them pending for the whole test.
	waitFor(t, "the rules to be evaluated", func() error {
		var data struct {
			Groups []struct {
				Rules []struct {
					Name   string `json:"name"`
					Health string `json:"health"`
					Error  string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		}
		prom.get(t, "/api/v1/rules", nil, &data)
		for _, g := range data.Groups {
			for _, r := range g.Rules {
				require.NotEqual(t, "err", r.Health, "rule %s: %s", r.Name, r.Error)
				if r.Health != "ok" {
					return fmt.Errorf("rule %s: health %q", r.Name, r.Health)
				}
			}
		}
		if len(data.Groups) == 0 {
			return errors.New("no rule groups loaded")
		}
		return nil
	})
	want := []string{"HighFailureRate channel=email pending", "HighFailureRate channel=sms pending", "NotificationsPastDue pending",
		"ProviderBreakerOpen channel=email pending"}
	waitFor(t, fmt.Sprintf("the active alerts to be %q", want), func() error {
		var data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		}
		prom.get(t, "/api/v1/alerts", nil, &data)
		var got []string
		for _, a := range data.Alerts {
			s := a.Labels["alertname"]
			if c := a.Labels["channel"]; c != "" {
				s += " channel=" + c
			}
			got = append(got, s+" "+a.State)
		}
		sort.Strings(got)
		if !slices.Equal(want, got) {
			return fmt.Errorf("active alerts %q", got)
		}
		return nil
	})
}

// waitFor polls cond on the test's goroutine (it may fail the test) until it returns nil, or
// fails the test with its last error after a minute.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s: %v", what, err)
		}
		<-tick.C
	}
}
