package main

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const dir = "../../config/monitoring"

// TestExtract checks each extracted file against the manifest it comes from: the dashboard is
// the ConfigMap's JSON as a Grafana import reads it, the rules are the PrometheusRule's groups
// (pkg/metrics's tests run promtool on the same groups).
func TestExtract(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		parse func(t *testing.T, b []byte) any
		want  func(t *testing.T) any
	}{
		"dashboard": {
			parse: func(t *testing.T, b []byte) any {
				var v map[string]any
				require.NoError(t, json.Unmarshal(b, &v), "the dashboard must be JSON")
				return v
			},
			want: func(t *testing.T) any {
				var cm struct{ Data map[string]string }
				readManifest(t, dir+"/grafana-dashboard.yaml", &cm)
				var v map[string]any
				require.NoError(t, json.Unmarshal([]byte(cm.Data["pulse.json"]), &v))
				require.Equal(t, "Pulse", v["title"])
				return v
			},
		},
		"rules": {
			parse: func(t *testing.T, b []byte) any {
				var v map[string]any
				require.NoError(t, yaml.Unmarshal(b, &v))
				return v
			},
			want: func(t *testing.T) any {
				var pr struct{ Spec map[string]any }
				readManifest(t, dir+"/prometheusrule.yaml", &pr)
				require.NotEmpty(t, pr.Spec["groups"])
				return pr.Spec
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			require.NoError(t, run([]string{"-dir", dir, name}, &stdout, &stderr))
			require.Empty(t, stderr.String())
			if diff := cmp.Diff(tc.want(t), tc.parse(t, stdout.Bytes())); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		})
	}
}

func TestExtractRefusesUnknownFiles(t *testing.T) {
	t.Parallel()
	for name, args := range map[string][]string{
		"none":    {"-dir", dir},
		"unknown": {"-dir", dir, "alerts"},
		"missing": {"-dir", t.TempDir(), "rules"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			require.Error(t, run(args, &stdout, &stderr))
			require.Empty(t, stdout.String(), "nothing half-extracted on stdout")
		})
	}
}

func readManifest(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, v))
}
