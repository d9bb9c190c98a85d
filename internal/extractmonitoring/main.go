// Command extractmonitoring prints, from Pulse's monitoring manifests, the files a Grafana or a
// Prometheus without the Prometheus Operator takes: the dashboard JSON held in the dashboard
// ConfigMap, and the rule groups of the PrometheusRule as a plain Prometheus rule file. It
// needs nothing but Go, so extracting them works on a fresh machine (no yq, no jq):
//
//	go run ./internal/extractmonitoring dashboard > pulse.json
//	go run ./internal/extractmonitoring rules > pulse-rules.yml
//
// `make dashboard` and `make prometheus-rules` run the same.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

const usage = `usage: go run ./internal/extractmonitoring [-dir DIR] dashboard|rules

  dashboard  print the Grafana dashboard JSON (data["pulse.json"] of grafana-dashboard.yaml)
  rules      print the alert rules as a plain Prometheus rule file (spec of prometheusrule.yaml)

  -dir DIR   the folder of the monitoring manifests (default config/monitoring)
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "extractmonitoring:", err)
			os.Exit(2)
		}
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("extractmonitoring", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	dir := fs.String("dir", "config/monitoring", "the folder of the monitoring manifests")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("name one of dashboard or rules")
	}
	var (
		out []byte
		err error
	)
	switch fs.Arg(0) {
	case "dashboard":
		out, err = dashboard(*dir + "/grafana-dashboard.yaml")
	case "rules":
		out, err = rules(*dir + "/prometheusrule.yaml")
	default:
		fs.Usage()
		return fmt.Errorf("unknown file %q: name one of dashboard or rules", fs.Arg(0))
	}
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// dashboard returns data["pulse.json"] of the dashboard ConfigMap, checked to be JSON.
func dashboard(path string) ([]byte, error) {
	var cm struct {
		Kind string            `yaml:"kind"`
		Data map[string]string `yaml:"data"`
	}
	if err := readYAML(path, &cm); err != nil {
		return nil, err
	}
	js, ok := cm.Data["pulse.json"]
	if cm.Kind != "ConfigMap" || !ok {
		return nil, fmt.Errorf("%s: not a ConfigMap with data[pulse.json]", path)
	}
	if !json.Valid([]byte(js)) {
		return nil, fmt.Errorf("%s: data[pulse.json] is not JSON", path)
	}
	return []byte(js), nil
}

// rules returns the PrometheusRule's spec, which is a rule file's content: its groups.
func rules(path string) ([]byte, error) {
	var pr struct {
		Kind string `yaml:"kind"`
		Spec struct {
			Groups []yaml.Node `yaml:"groups"`
		} `yaml:"spec"`
	}
	if err := readYAML(path, &pr); err != nil {
		return nil, err
	}
	if pr.Kind != "PrometheusRule" || len(pr.Spec.Groups) == 0 {
		return nil, fmt.Errorf("%s: not a PrometheusRule with groups", path)
	}
	var buf bytes.Buffer
	buf.WriteString("# Pulse's alert rules for Prometheus's rule_files, extracted from " + path + ".\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(map[string]any{"groups": pr.Spec.Groups}); err != nil {
		return nil, fmt.Errorf("%s: encode rules: %w", path, err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func readYAML(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
