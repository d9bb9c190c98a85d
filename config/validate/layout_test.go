package validate_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	validate "github.com/pulse-knative/pulse/config/validate"
)

// addOns are the subdirectories of config/ whose objects `ko apply -Rf config/` applies beside
// Pulse and `ko apply -f config/` leaves out: the development datastores and the Prometheus
// Operator's objects. Every other subdirectory holds no manifest ko or kubectl would apply.
var addOns = []string{"datastores", "monitoring"}

// TestConfigLayout checks what the deploy commands send to the cluster, as ko and kubectl
// enumerate the files: `ko apply -f config/` (the top level only) applies all of Pulse, and
// `ko apply -Rf config/` the same objects plus the add-ons'. In both, each object comes
// once and the namespace comes first, so the first apply on a fresh cluster does not fail
// on objects whose namespace does not exist yet.
func TestConfigLayout(t *testing.T) {
	t.Parallel()
	top, err := validate.LoadTop(configDir, ".")
	require.NoError(t, err)
	all, err := validate.Load(configDir, ".")
	require.NoError(t, err)
	var extra []string
	for _, dir := range addOns {
		set, err := validate.Load(configDir, dir)
		require.NoError(t, err)
		require.NotEmpty(t, set.Applied, "config/%s", dir)
		extra = append(extra, objectKeys(set.Applied)...)
	}

	for name, tc := range map[string]struct {
		set  *validate.Set
		want []string
	}{
		"ko apply -f config/":  {set: top, want: objectKeys(top.Applied)},
		"ko apply -Rf config/": {set: all, want: append(objectKeys(top.Applied), extra...)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkApplied(t, tc.set.Applied)
			if diff := cmp.Diff(tc.want, objectKeys(tc.set.Applied)); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}

	// The top level is the whole of Pulse, not a part of it.
	kinds := map[string]int{}
	for _, d := range top.Applied {
		kinds[d.APIVersion+" "+d.Kind]++
	}
	require.Equal(t, len(validate.Functions)-1, kinds["serving.knative.dev/v1 Service"], "a Knative Service per function, the stream source aside")
	require.Equal(t, 2, kinds["sources.knative.dev/v1 ContainerSource"], "a stream source per priority")
	require.NotZero(t, kinds["sources.knative.dev/v1 PingSource"], "the cron schedules")
	require.NotZero(t, kinds["v1 ConfigMap"], "the functions' settings")
}

// checkApplied checks a sequence of applied documents: the namespace first, then each object
// once.
func checkApplied(t *testing.T, docs []*validate.Document) {
	t.Helper()
	require.NotEmpty(t, docs)
	require.Equal(t, "Namespace", docs[0].Kind, "the namespace must be applied first, not %s", docs[0])
	seen := map[string]*validate.Document{}
	for _, d := range docs {
		key := objectKey(d)
		if first, ok := seen[key]; ok {
			t.Errorf("%s is applied twice: %s and %s", key, first, d)
		}
		seen[key] = d
		if d.Kind != "Namespace" {
			require.Equal(t, docs[0].Name, d.Namespace, "%s: every namespaced object lives in Pulse's namespace", d)
		}
	}
}

// TestConfigTreeIsAppliable checks that everything `kubectl apply -R -f config/` (and ko, which
// takes the .yaml and .json files of the same walk) would send to the API server is a
// Kubernetes object: a Prometheus rule file, a Grafana dashboard or a kustomization.yaml
// anywhere under config/ makes the documented deploy command fail.
func TestConfigTreeIsAppliable(t *testing.T) {
	t.Parallel()
	var files []string
	require.NoError(t, filepath.WalkDir(configDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		// kubectl's extensions; ko's are .yaml and .json.
		if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" || ext == ".json" {
			files = append(files, path)
		}
		return nil
	}))
	require.NotEmpty(t, files)
	for _, file := range files {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		docs, err := validate.Decode(file, b)
		require.NoError(t, err, "%s: keep files that are not Kubernetes objects out of config/", file)
		require.NotEmpty(t, docs, "%s holds no object", file)
	}
}

// objectKeys names each document's object as the API server identifies it.
func objectKeys(docs []*validate.Document) []string {
	var keys []string
	for _, d := range docs {
		keys = append(keys, objectKey(d))
	}
	return keys
}

func objectKey(d *validate.Document) string {
	group, _, ok := strings.Cut(d.APIVersion, "/")
	if !ok {
		group = "core"
	}
	return group + "/" + d.Kind + "/" + d.Namespace + "/" + d.Name
}
