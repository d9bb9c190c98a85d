package cluster

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	autoscalingv1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	validate "github.com/pulse-knative/pulse/config/validate"
)

// repoRoot is the repository's root, from this package's directory.
const repoRoot = "../../.."

// TestReadManifests reads config/ as `ko apply -f config/` takes it: the same documents as
// validate.LoadTop, in the same order, with every ko:// image of a Pulse function replaced by
// its fixed digest reference.
func TestReadManifests(t *testing.T) {
	t.Parallel()
	docs, err := ReadManifests(repoRoot + "/config")
	require.NoError(t, err)
	top, err := validate.LoadTop(repoRoot, "config")
	require.NoError(t, err)
	names := func(ds []*validate.Document) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.Kind+" "+d.Namespace+"/"+d.Name)
		}
		return out
	}
	if diff := cmp.Diff(names(top.Applied), names(docs)); diff != "" {
		t.Errorf("documents (-ko apply -f config/ +ReadManifests):\n%s", diff)
	}

	fixed := map[string]bool{}
	for _, w := range (&validate.Set{Applied: docs}).Workloads() {
		for _, c := range w.Pod.Containers {
			fixed[c.Image] = true
		}
	}
	for _, d := range docs {
		require.NotContains(t, string(d.Raw), validate.KoPrefix, "%s", d)
	}
	for _, fn := range validate.Functions {
		require.True(t, fixed[FixedImage(fn.ImportPath)], "no container runs %s", FixedImage(fn.ImportPath))
	}
}

func TestFixImages(t *testing.T) {
	t.Parallel()
	in := []byte("image: ko://knative.dev/serving/cmd/queue\nqueue-sidecar-image: \"ko://knative.dev/serving/cmd/queue\"\nimage: docker.io/redis:7\n")
	want := "image: " + FixedImage("knative.dev/serving/cmd/queue") + "\nqueue-sidecar-image: \"" +
		FixedImage("knative.dev/serving/cmd/queue") + "\"\nimage: docker.io/redis:7\n"
	require.Equal(t, want, string(FixImages(in)))
	require.Regexp(t, `^registry\.invalid/knative\.dev/serving/cmd/queue@sha256:[0-9a-f]{64}$`, FixedImage("knative.dev/serving/cmd/queue"))
	require.NotEqual(t, FixedImage("a/b"), FixedImage("a/c"))
}

// TestCompareRevision starts from what Serving makes of deliver-high's template when all is
// well, then departs from it one way at a time: each departure must be named.
func TestCompareRevision(t *testing.T) {
	t.Parallel()
	docs, err := ReadManifests(repoRoot + "/config/21-deliver-high.yaml")
	require.NoError(t, err)
	require.Len(t, docs, 1)
	tmpl := docs[0].Object.(*servingv1.Service).Spec.Template
	require.NotEmpty(t, tmpl.Annotations)
	require.NotNil(t, tmpl.Spec.ContainerConcurrency)

	reconciled := func() (*servingv1.Revision, *autoscalingv1alpha1.PodAutoscaler, *appsv1.Deployment) {
		rev := &servingv1.Revision{ObjectMeta: *tmpl.ObjectMeta.DeepCopy(), Spec: *tmpl.Spec.DeepCopy()}
		pa := &autoscalingv1alpha1.PodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}},
			Spec: autoscalingv1alpha1.PodAutoscalerSpec{
				ContainerConcurrency: *tmpl.Spec.ContainerConcurrency,
				ScaleTargetRef:       corev1.ObjectReference{Name: "deliver-high-00001-deployment"},
			},
		}
		for k, v := range tmpl.Annotations {
			if strings.HasPrefix(k, autoscalingPrefix) {
				pa.Annotations[k] = v
			}
		}
		dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "deliver-high-00001-deployment"}}
		dep.Spec.Template.Spec.Containers = append(tmpl.Spec.DeepCopy().Containers,
			corev1.Container{Name: "queue-proxy", Image: FixedImage("knative.dev/serving/cmd/queue")})
		return rev, pa, dep
	}

	rev, pa, dep := reconciled()
	require.Empty(t, compareRevision(tmpl, rev, pa, dep), "as reconciled: no departure")

	for name, tc := range map[string]struct {
		depart func(*servingv1.Revision, *autoscalingv1alpha1.PodAutoscaler, *appsv1.Deployment)
		want   string
	}{
		"PodAutoscaler without min-scale": {
			depart: func(_ *servingv1.Revision, pa *autoscalingv1alpha1.PodAutoscaler, _ *appsv1.Deployment) {
				delete(pa.Annotations, "autoscaling.knative.dev/min-scale")
			},
			want: "PodAutoscaler annotation autoscaling.knative.dev/min-scale: declared 2, got ",
		},
		"Revision with another target": {
			depart: func(rev *servingv1.Revision, _ *autoscalingv1alpha1.PodAutoscaler, _ *appsv1.Deployment) {
				rev.Annotations["autoscaling.knative.dev/target"] = "70"
			},
			want: "Revision annotation autoscaling.knative.dev/target: declared 50, got 70",
		},
		"PodAutoscaler with Knative's default concurrency": {
			depart: func(_ *servingv1.Revision, pa *autoscalingv1alpha1.PodAutoscaler, _ *appsv1.Deployment) {
				pa.Spec.ContainerConcurrency = 0
			},
			want: "PodAutoscaler containerConcurrency: declared 100, got 0",
		},
		"Revision without timeout": {
			depart: func(rev *servingv1.Revision, _ *autoscalingv1alpha1.PodAutoscaler, _ *appsv1.Deployment) {
				rev.Spec.TimeoutSeconds = nil
			},
			want: "Revision timeoutSeconds: declared 30, got <unset>",
		},
		"Deployment with another image": {
			depart: func(_ *servingv1.Revision, _ *autoscalingv1alpha1.PodAutoscaler, dep *appsv1.Deployment) {
				dep.Spec.Template.Spec.Containers[0].Image = "registry.invalid/other@sha256:00"
			},
			want: "Deployment images: declared deliver=" + FixedImage(validate.Module+"/functions/deliver-high"),
		},
		"PodAutoscaler scaling another Deployment": {
			depart: func(_ *servingv1.Revision, pa *autoscalingv1alpha1.PodAutoscaler, _ *appsv1.Deployment) {
				pa.Spec.ScaleTargetRef.Name = "other"
			},
			want: "PodAutoscaler scale target: declared deliver-high-00001-deployment, got other",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rev, pa, dep := reconciled()
			tc.depart(rev, pa, dep)
			diffs := compareRevision(tmpl, rev, pa, dep)
			require.Len(t, diffs, 1, "%q", diffs)
			require.True(t, strings.HasPrefix(diffs[0], tc.want), "got %q, want it to start with %q", diffs[0], tc.want)
		})
	}
}

// TestExpectedWarning: only the warnings a cluster without kubelet cannot avoid, and a
// controller's retried update conflict, are let through; a refused pod or a webhook's refusal
// is not.
func TestExpectedWarning(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		reason, message string
		want            bool
	}{
		"PingSource sink":  {"SinkNotFound", `Sink not found: {"ref":{"kind":"Service","name":"cron"}}`, true},
		"SinkBinding sink": {"InternalError", `address not set for &{Service pulse deliver-high serving.knative.dev/v1  <nil>}`, true},
		"update conflict":  {"UpdateFailed", `Failed to update status for "stream-source-low-sinkbinding": Operation cannot be fulfilled on sinkbindings.sources.knative.dev "stream-source-low-sinkbinding": the object has been modified; please apply your changes to the latest version and try again`, true},
		"pod refused":      {"FailedCreate", `pods "x" is forbidden: violates PodSecurity "restricted:latest"`, false},
		"webhook refusal":  {"InternalError", `admission webhook "webhook.serving.knative.dev" denied the request`, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ev := corev1.Event{Reason: tc.reason, Message: tc.message}
			require.Equal(t, tc.want, expectedWarning(ev))
		})
	}
}

// TestMissingDeploymentName: a reconciler's "not found" warning names the Deployment the check
// then looks up; no other warning does.
func TestMissingDeploymentName(t *testing.T) {
	t.Parallel()
	name, ok := missingDeploymentName(corev1.Event{Reason: "InternalError", Message: `deployments.apps "stream-source-high-deployment" not found`})
	require.True(t, ok)
	require.Equal(t, "stream-source-high-deployment", name)
	for _, msg := range []string{
		`services.serving.knative.dev "cron" not found`,
		`deployments.apps "x" not found; and more`,
		`pods "x" is forbidden: violates PodSecurity "restricted:latest"`,
	} {
		_, ok := missingDeploymentName(corev1.Event{Reason: "InternalError", Message: msg})
		require.False(t, ok, msg)
	}
	require.False(t, expectedWarning(corev1.Event{Reason: "InternalError", Message: `deployments.apps "stream-source-high-deployment" not found`}),
		"a missing Deployment is let through only when it exists by the time of the check")
}
