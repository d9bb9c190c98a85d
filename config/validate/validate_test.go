package validate_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"

	validate "github.com/pulse-knative/pulse/config/validate"
	"github.com/pulse-knative/pulse/pkg/config"
)

// Paths from this package's directory.
const (
	repoRoot  = "../.."
	configDir = ".."
)

// configVars is read once per test binary: every test reads the same pkg/config.
var configVars = sync.OnceValues(validate.AllVars)

// loadConfigVar switches the test binary into a config loader (see TestMain): its value
// names the pkg/config struct to load.
const loadConfigVar = "VALIDATE_LOAD_CONFIG"

func TestMain(m *testing.M) {
	if name := os.Getenv(loadConfigVar); name != "" {
		os.Exit(loadConfig(name))
	}
	os.Exit(m.Run())
}

// loadConfig runs config.Load on config.<name> with this process's environment, printing
// the error on stderr, and returns the exit code.
func loadConfig(name string) int {
	spec, ok := validate.ConfigStruct(name)
	if !ok {
		fmt.Fprintf(os.Stderr, "no config.%s in config.All\n", name)
		return 2
	}
	if err := config.Load(spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// load runs config.Load on config.<name> with env as the whole environment, as the function
// would start with it: config.Load reads the process's environment, so it runs in a child
// process, this test binary switched by loadConfigVar.
func load(t *testing.T, name string, env map[string]string) error {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = []string{loadConfigVar + "=" + name}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("config.Load(config.%s): %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

type testBundle struct {
	set     *validate.Set
	checker validate.Checker
}

// setup loads the manifests under config/ afresh (tests may change them) and the checker.
func setup(t *testing.T) *testBundle {
	t.Helper()
	vars, err := configVars()
	require.NoError(t, err)
	set, err := validate.LoadTop(configDir, ".")
	require.NoError(t, err)
	more, err := validate.Load(configDir, "datastores", "alternatives")
	require.NoError(t, err)
	set.Applied = append(set.Applied, more.Applied...)
	set.Templates = append(set.Templates, more.Templates...)
	jobs, err := cronJobs(filepath.Join(repoRoot, "pkg", "scheduler"))
	require.NoError(t, err)
	return &testBundle{set: set, checker: validate.Checker{Vars: vars, Jobs: jobs}}
}

// cronJobs reads the job names functions/cron understands: the string constants named Job*
// in pkg/scheduler. Nil when the package has not landed yet.
func cronJobs(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		return nil, err
	}
	var jobs []string
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Job") || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						job, err := strconv.Unquote(lit.Value)
						if err != nil {
							return nil, err
						}
						jobs = append(jobs, job)
					}
				}
			}
		}
	}
	return jobs, nil
}

// functionDirExists reports whether a function's main package is in the repository yet.
func functionDirExists(fn validate.Function) bool {
	_, err := os.Stat(filepath.Join(repoRoot, fn.Dir()))
	return err == nil
}

func TestManifests(t *testing.T) {
	t.Parallel()
	b := setup(t)

	require.NotEmpty(t, b.set.Applied)
	kinds := map[string]int{}
	for _, d := range b.set.Applied {
		kinds[d.APIVersion+" "+d.Kind]++
	}
	require.Equal(t, len(validate.Functions)-1, kinds["serving.knative.dev/v1 Service"], "a Knative Service per function, the stream source aside")
	require.Equal(t, 2, kinds["sources.knative.dev/v1 ContainerSource"], "a stream source per priority")
	require.Equal(t, 2, kinds["apps/v1 StatefulSet"], "PostgreSQL and Redis for development")

	for name, check := range map[string]func(*validate.Set) []validate.Problem{
		"knative":      b.checker.Knative,
		"security":     b.checker.Security,
		"env":          b.checker.Env,
		"references":   b.checker.References,
		"visibility":   b.checker.Visibility,
		"scaling":      b.checker.Scaling,
		"timeouts":     b.checker.Timeouts,
		"connections":  b.checker.Connections,
		"shared":       b.checker.Shared,
		"schedules":    b.checker.Schedules,
		"alternatives": b.checker.Alternatives,
		"datastores":   b.checker.Datastores,
		"channels":     b.checker.Channels,
	} {
		t.Run(name, func(t *testing.T) {
			for _, p := range check(b.set) {
				t.Error(p)
			}
		})
	}
}

// TestFunctionConfig checks each function's manifest against its pkg/config struct: every
// variable the struct requires without a default is set, and config.Load, run with exactly
// the environment the manifest gives the container (Secret templates standing in for the
// Secrets), accepts it.
func TestFunctionConfig(t *testing.T) {
	t.Parallel()
	b := setup(t)

	containers := map[string][]containerOf{}
	for _, w := range b.set.Workloads() {
		for _, ctr := range w.Pod.Containers {
			if fn, ok := validate.FunctionOf(ctr.Image); ok {
				containers[fn.ImportPath] = append(containers[fn.ImportPath], containerOf{w, ctr})
			}
		}
	}
	for _, fn := range validate.Functions {
		t.Run(fn.Name(), func(t *testing.T) {
			t.Parallel()
			_, ok := validate.ConfigStruct(fn.Config)
			require.True(t, ok, "config.All has no %s struct: update validate.Functions", fn.Config)
			require.NotEmpty(t, containers[fn.ImportPath], "no manifest runs %s", fn.ImportPath)
			for _, c := range containers[fn.ImportPath] {
				env, problems := b.set.Env(c.w.Doc.Namespace, c.ctr)
				require.Empty(t, problems)
				vars := map[string]string{}
				for name, v := range env {
					vars[name] = v.Value
					if v.Secret {
						// The templates' placeholders are made to be refused; stand in
						// well-formed values, as the operator's Secret would hold.
						secret, ok := testSecrets[name]
						require.True(t, ok, "no test value for the secret %s: add one to testSecrets", name)
						vars[name] = secret
					}
				}
				// What Knative's ContainerSource injects.
				if c.w.Kind == "ContainerSource" {
					src := c.w.Doc.Object.(*sourcesv1.ContainerSource)
					vars["K_SINK"] = "http://" + src.Spec.Sink.Ref.Name + "." + c.w.Doc.Namespace + ".svc.cluster.local"
				}
				require.NoError(t, load(t, fn.Config, vars), "%s", c.w.Doc)
			}
		})
	}
}

// testSecrets are well-formed values of the variables that come from Secrets.
var testSecrets = map[string]string{
	"PULSE_DATABASE_URL":  "postgres://pulse:secret@postgres.pulse.svc.cluster.local:5432/pulse?sslmode=disable",
	"PULSE_REDIS_URL":     "redis://:secret@redis.pulse.svc.cluster.local:6379/0",
	"PULSE_INGEST_TOKENS": "0123456789abcdef=https://shop.example.com/",
	// Empty, as in the Secret template: the channel is off.
	"PULSE_EMAIL_ACCOUNTS": "",
	"PULSE_SMS_ACCOUNTS":   "",
	"PULSE_PUSH_ACCOUNTS":  "",
	"PULSE_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}

type containerOf struct {
	w   validate.Workload
	ctr corev1.Container
}

// TestKoPathsAreMainPackages checks that every ko:// image names a main package of the
// module. A function whose directory has not landed yet is skipped.
func TestKoPathsAreMainPackages(t *testing.T) {
	t.Parallel()
	b := setup(t)

	paths := map[string]bool{}
	for _, w := range b.set.Workloads() {
		for _, ctr := range w.Pod.Containers {
			if ip, ok := strings.CutPrefix(ctr.Image, validate.KoPrefix); ok {
				paths[ip] = true
			}
		}
	}
	require.NotEmpty(t, paths)
	for ip := range paths {
		t.Run(ip, func(t *testing.T) {
			t.Parallel()
			fn, ok := validate.FunctionOf(validate.KoPrefix + ip)
			require.True(t, ok, "%s is not in validate.Functions", ip)
			if !functionDirExists(fn) {
				t.Skipf("%s has not landed yet", fn.Dir())
			}
			cmd := exec.CommandContext(t.Context(), "go", "list", "-f", "{{.Name}}", ip)
			cmd.Dir = repoRoot
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "go list %s: %s", ip, out)
			require.Equal(t, "main", strings.TrimSpace(string(out)), "%s is not a main package", ip)
		})
	}
}

// TestCheckerCatchesDrift changes a parsed manifest the way drift would and asserts that the
// checks report it: the test above passing means something only if they can fail.
func TestCheckerCatchesDrift(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		mutate func(t *testing.T, s *validate.Set)
		want   string
	}{
		"securityContext removed": {
			mutate: func(t *testing.T, s *validate.Set) { container(t, s, "deliver-high").SecurityContext = nil },
			want:   "no securityContext",
		},
		"root filesystem writable": {
			mutate: func(t *testing.T, s *validate.Set) {
				container(t, s, "ingest").SecurityContext.ReadOnlyRootFilesystem = ptr(false)
			},
			want: "readOnlyRootFilesystem must be true",
		},
		"privilege escalation allowed": {
			mutate: func(t *testing.T, s *validate.Set) {
				sourceContainer(t, s, "stream-source-low").SecurityContext.AllowPrivilegeEscalation = nil
			},
			want: "allowPrivilegeEscalation must be false",
		},
		"capability added": {
			mutate: func(t *testing.T, s *validate.Set) {
				container(t, s, "cron").SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
			},
			want: "capabilities.add must be empty",
		},
		"datastore securityContext removed": {
			mutate: func(t *testing.T, s *validate.Set) {
				object[*appsv1.StatefulSet](t, s, "redis").Spec.Template.Spec.Containers[0].SecurityContext = nil
			},
			want: "no securityContext",
		},
		"memory limit removed": {
			mutate: func(t *testing.T, s *validate.Set) {
				delete(container(t, s, "metrics").Resources.Limits, corev1.ResourceMemory)
			},
			want: "resources.limits.memory is not set",
		},
		"liveness probe removed": {
			mutate: func(t *testing.T, s *validate.Set) { container(t, s, "deliver-low").LivenessProbe = nil },
			want:   "livenessProbe must be an httpGet of /healthz",
		},
		"variable pkg/config does not have": {
			mutate: func(t *testing.T, s *validate.Set) {
				addEnv(container(t, s, "ingest"), "PULSE_SEND_TIMEOUT", "5s")
			},
			want: "PULSE_SEND_TIMEOUT (from value) is not a variable of config.Ingest",
		},
		"ingest accepts a channel deliver has no accounts for": {
			mutate: func(t *testing.T, s *validate.Set) {
				object[*corev1.ConfigMap](t, s, "pulse-ingest").Data["PULSE_CHANNELS"] = "webhook,sms"
				removeEnv(container(t, s, "deliver-high"), "PULSE_SMS_ACCOUNTS")
			},
			want: "PULSE_CHANNELS accepts sms, but",
		},
		"deliver has accounts ingest refuses": {
			mutate: func(t *testing.T, s *validate.Set) {
				setEnv(t, container(t, s, "deliver-low"), "PULSE_PUSH_ACCOUNTS", "main=fcm://?project=p")
			},
			want: "configures push accounts (PULSE_PUSH_ACCOUNTS), but PULSE_CHANNELS does not accept push",
		},
		"ConfigMap key pkg/config does not have": {
			mutate: func(t *testing.T, s *validate.Set) {
				object[*corev1.ConfigMap](t, s, "pulse-deliver").Data["PULSE_SEND_TIMOUT"] = "5s"
			},
			want: "PULSE_SEND_TIMOUT (from ConfigMap pulse-deliver) is not a variable of config.Deliver",
		},
		"required variable missing": {
			mutate: func(t *testing.T, s *validate.Set) {
				removeEnv(container(t, s, "deliver-high"), "PULSE_WEBHOOK_SECRET")
			},
			want: "PULSE_WEBHOOK_SECRET is required by config.Deliver",
		},
		"credential in a literal": {
			mutate: func(t *testing.T, s *validate.Set) {
				setEnv(t, container(t, s, "cron"), "PULSE_DATABASE_URL", "postgres://pulse:hunter2@db/pulse")
			},
			want: "PULSE_DATABASE_URL carries credentials",
		},
		"PORT set": {
			mutate: func(t *testing.T, s *validate.Set) {
				addEnv(container(t, s, "metrics"), "PORT", "9090")
			},
			want: "PORT is set by Knative",
		},
		"K_SINK set": {
			mutate: func(t *testing.T, s *validate.Set) {
				addEnv(sourceContainer(t, s, "stream-source-high"), "K_SINK", "http://deliver-high")
			},
			want: "K_SINK is set by Knative",
		},
		"Secret key missing": {
			mutate: func(t *testing.T, s *validate.Set) {
				container(t, s, "ingest").Env[2].ValueFrom.SecretKeyRef.Key = "ingest-token"
			},
			want: "Secret pulse-secrets (applied or template) has no key ingest-token",
		},
		"sink names a missing Service": {
			mutate: func(t *testing.T, s *validate.Set) {
				object[*sourcesv1.ContainerSource](t, s, "stream-source-low").Spec.Sink.Ref.Name = "deliver-lo"
			},
			want: "sink names Service pulse/deliver-lo, which no manifest defines",
		},
		"PingSource sink names a missing Service": {
			mutate: func(t *testing.T, s *validate.Set) {
				object[*sourcesv1.PingSource](t, s, "cron-release").Spec.Sink.Ref.Name = "scheduler"
			},
			want: "sink names Service pulse/scheduler",
		},
		"internal Service made public": {
			mutate: func(t *testing.T, s *validate.Set) {
				delete(object[*servingv1.Service](t, s, "deliver-low").Labels, "networking.knative.dev/visibility")
			},
			want: "internal Service: metadata.labels must have networking.knative.dev/visibility: cluster-local",
		},
		"priorities crossed": {
			mutate: func(t *testing.T, s *validate.Set) {
				object[*sourcesv1.ContainerSource](t, s, "stream-source-low").Spec.Sink.Ref.Name = "deliver-high"
			},
			want: "PULSE_PRIORITY=low feeds Service deliver-high",
		},
		"timeout shorter than the send": {
			mutate: func(t *testing.T, s *validate.Set) {
				object[*servingv1.Service](t, s, "deliver-high").Spec.Template.Spec.TimeoutSeconds = ptr[int64](10)
			},
			want: "must be longer than PULSE_SEND_TIMEOUT",
		},
		"max-scale raised past the source's concurrency": {
			mutate: func(t *testing.T, s *validate.Set) {
				object[*servingv1.Service](t, s, "deliver-high").Spec.Template.Annotations["autoscaling.knative.dev/max-scale"] = "40"
			},
			want: "PULSE_STREAM_CONCURRENCY (1000) keeps deliver-high below max-scale",
		},
		"connections past max_connections": {
			mutate: func(t *testing.T, s *validate.Set) {
				object[*servingv1.Service](t, s, "ingest").Spec.Template.Annotations["autoscaling.knative.dev/max-scale"] = "30"
			},
			want: "leaves no headroom",
		},
		"deliver-low no longer scales to zero": {
			mutate: func(t *testing.T, s *validate.Set) {
				object[*servingv1.Service](t, s, "deliver-low").Spec.Template.Annotations["autoscaling.knative.dev/min-scale"] = "1"
			},
			want: "deliver-low must scale to zero",
		},
		"schedule Knative refuses": {
			mutate: func(t *testing.T, s *validate.Set) {
				object[*sourcesv1.PingSource](t, s, "cron-release").Spec.Schedule = "@every 10s"
			},
			want: "unsupported descriptor @every",
		},
		"job cron does not know": {
			mutate: func(t *testing.T, s *validate.Set) {
				object[*sourcesv1.PingSource](t, s, "cron-trim").Spec.Data = `{"job":"vacuum"}`
			},
			want: `job "trim" has 0 schedules`,
		},
		"min-scale above max-scale": {
			mutate: func(t *testing.T, s *validate.Set) {
				object[*servingv1.Service](t, s, "ingest").Spec.Template.Annotations["autoscaling.knative.dev/min-scale"] = "11"
			},
			want: "Knative validation",
		},
		"redis without AOF": {
			mutate: func(t *testing.T, s *validate.Set) {
				ctr := &object[*appsv1.StatefulSet](t, s, "redis").Spec.Template.Spec.Containers[0]
				i := slices.Index(ctr.Args, "--appendonly")
				ctr.Args[i+1] = "no"
			},
			want: "redis-server must run with --appendonly yes",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			require.Empty(t, b.checker.Check(b.set), "the manifests must pass before the change")
			tt.mutate(t, b.set)
			var got []string
			for _, p := range b.checker.Check(b.set) {
				got = append(got, p.String())
			}
			require.True(t, slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, tt.want) }),
				"want a problem containing %q, got:\n%s", tt.want, strings.Join(got, "\n"))
		})
	}
}

// TestDecodeStrict checks that a field the type does not have, or a document that is not a
// Kubernetes object, fails to load.
func TestDecodeStrict(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		yaml string
		want string
	}{
		"unknown field": {
			yaml: "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  template:\n    spec:\n      containerConcurency: 10\n",
			want: `unknown field "containerConcurency"`,
		},
		"field given twice": {
			yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  A: a\n  A: b\n",
			want: "already set in map",
		},
		"not an object": {
			yaml: "dashboard:\n  title: Pulse\n",
			want: "not a Kubernetes object",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := validate.Decode("fixture.yaml", []byte("# a comment-only document\n---\n"+tt.yaml))
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// TestKoConfig checks ko.yaml strictly (a misspelt key is silently ignored by ko) and that
// .ko.yaml, the name ko looks for, links to it.
func TestKoConfig(t *testing.T) {
	t.Parallel()

	link, err := os.Readlink(filepath.Join(repoRoot, ".ko.yaml"))
	require.NoError(t, err, ".ko.yaml must be a symlink to ko.yaml")
	require.Equal(t, "ko.yaml", link)

	b, err := os.ReadFile(filepath.Join(repoRoot, "ko.yaml"))
	require.NoError(t, err)
	var cfg struct {
		DefaultBaseImage string   `json:"defaultBaseImage"`
		DefaultPlatforms []string `json:"defaultPlatforms"`
		DefaultFlags     []string `json:"defaultFlags"`
		DefaultLdflags   []string `json:"defaultLdflags"`
	}
	require.NoError(t, yaml.UnmarshalStrict(b, &cfg))
	require.NotEmpty(t, cfg.DefaultBaseImage)
	require.ElementsMatch(t, []string{"linux/amd64", "linux/arm64"}, cfg.DefaultPlatforms)
	require.Contains(t, cfg.DefaultFlags, "-trimpath")
	require.Subset(t, cfg.DefaultLdflags, []string{"-s", "-w"})
	require.True(t, slices.ContainsFunc(cfg.DefaultLdflags, func(f string) bool {
		return strings.HasPrefix(f, "-X "+validate.Module+"/pkg/observe.Version=")
	}), "the version must be injected into pkg/observe.Version")
}

func ptr[T any](v T) *T { return &v }

// object returns the applied object of type T with that name.
func object[T interface{ GetName() string }](t *testing.T, s *validate.Set, name string) T {
	t.Helper()
	for _, d := range s.Applied {
		if o, ok := d.Object.(T); ok && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %T named %s", *new(T), name)
	return *new(T)
}

// container returns the first container of the Knative Service of that name.
func container(t *testing.T, s *validate.Set, name string) *corev1.Container {
	t.Helper()
	return &object[*servingv1.Service](t, s, name).Spec.Template.Spec.Containers[0]
}

// sourceContainer returns the first container of the ContainerSource of that name.
func sourceContainer(t *testing.T, s *validate.Set, name string) *corev1.Container {
	t.Helper()
	return &object[*sourcesv1.ContainerSource](t, s, name).Spec.Template.Spec.Containers[0]
}

// addEnv gives a container one more variable, a literal value.
func addEnv(c *corev1.Container, name, value string) {
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
}

// removeEnv takes a variable out of a container's env.
func removeEnv(c *corev1.Container, name string) {
	c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
}

// setEnv replaces the env entry of a variable the container already has with a literal value.
func setEnv(t *testing.T, c *corev1.Container, name, value string) {
	t.Helper()
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
	require.GreaterOrEqual(t, i, 0, "the container has no %s to replace", name)
	c.Env[i] = corev1.EnvVar{Name: name, Value: value}
}
