package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	autoscalingv1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	validate "github.com/pulse-knative/pulse/config/validate"
)

// The resources Check reads.
var (
	ksvcs            = schema.GroupVersionResource{Group: "serving.knative.dev", Version: "v1", Resource: "services"}
	revisions        = schema.GroupVersionResource{Group: "serving.knative.dev", Version: "v1", Resource: "revisions"}
	podAutoscalers   = schema.GroupVersionResource{Group: "autoscaling.internal.knative.dev", Version: "v1alpha1", Resource: "podautoscalers"}
	deployments      = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	containerSources = schema.GroupVersionResource{Group: "sources.knative.dev", Version: "v1", Resource: "containersources"}
	sinkBindings     = schema.GroupVersionResource{Group: "sources.knative.dev", Version: "v1", Resource: "sinkbindings"}
	pingSources      = schema.GroupVersionResource{Group: "sources.knative.dev", Version: "v1", Resource: "pingsources"}
	events           = schema.GroupVersionResource{Version: "v1", Resource: "events"}
)

// autoscalingPrefix starts the annotations Serving copies from a Revision to its PodAutoscaler.
const autoscalingPrefix = "autoscaling.knative.dev/"

// Checker compares what Knative's controllers reconciled from Pulse's manifests with what the
// manifests declare.
type Checker struct {
	dyn dynamic.Interface
	// Poll is how long to wait before looking again at an object not reconciled yet.
	Poll time.Duration
}

// NewChecker returns a Checker for the cluster of cfg.
func NewChecker(cfg *rest.Config) (*Checker, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Checker{dyn: dyn, Poll: time.Second}, nil
}

// Result is the outcome of the checks of one applied object.
type Result struct {
	// Object names the manifest's document.
	Object string
	// Found says what was checked, for the report.
	Found string
	// Err is nil when the object was reconciled as declared.
	Err error
}

// Check waits, until ctx ends, for each Knative Service, ContainerSource and PingSource of docs
// to be reconciled as declared, then reports the warning events of their namespaces.
func (c *Checker) Check(ctx context.Context, docs []*validate.Document) []Result {
	var results []Result
	namespaces := map[string]bool{}
	for _, d := range docs {
		var check func(context.Context) (string, error)
		switch want := d.Object.(type) {
		case *servingv1.Service:
			check = func(ctx context.Context) (string, error) { return c.service(ctx, want) }
		case *sourcesv1.ContainerSource:
			check = func(ctx context.Context) (string, error) { return c.containerSource(ctx, want) }
		case *sourcesv1.PingSource:
			check = func(ctx context.Context) (string, error) { return c.pingSource(ctx, want) }
		default:
			continue
		}
		namespaces[d.Namespace] = true
		found, err := c.eventually(ctx, check)
		results = append(results, Result{Object: d.String(), Found: found, Err: err})
	}
	for _, ns := range slices.Sorted(maps.Keys(namespaces)) {
		results = append(results, c.warningEvents(ctx, ns))
	}
	return results
}

// errFinal marks a check that waiting cannot mend.
var errFinal = errors.New("final")

// eventually runs check until it passes, fails with errFinal or ctx ends, and returns its last
// answer.
func (c *Checker) eventually(ctx context.Context, check func(context.Context) (string, error)) (string, error) {
	for {
		found, err := check(ctx)
		if err == nil || errors.Is(err, errFinal) {
			return found, err
		}
		select {
		case <-ctx.Done():
			return found, fmt.Errorf("%w (still so when the wait ended)", err)
		case <-time.After(c.Poll):
		}
	}
}

// get reads one object into out, a pointer to its Go type.
func (c *Checker) get(ctx context.Context, gvr schema.GroupVersionResource, ns, name string, out any) error {
	u, err := c.dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get %s %s/%s: %w", gvr.Resource, ns, name, err)
	}
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out)
}

// getReconciled reads one Knative object into obj and fails while its controller has not seen
// its latest generation, and for good when it has and the condition named final is False.
func (c *Checker) getReconciled(ctx context.Context, gvr schema.GroupVersionResource, ns, name string, obj duckv1.KRShaped, final string) error {
	if err := c.get(ctx, gvr, ns, name, obj); err != nil {
		return err
	}
	what := gvr.Resource + " " + ns + "/" + name
	status := obj.GetStatus()
	if status.ObservedGeneration != obj.GetGeneration() {
		return fmt.Errorf("%s: generation %d not reconciled yet (observed %d)", what, obj.GetGeneration(), status.ObservedGeneration)
	}
	for _, cond := range status.Conditions {
		if string(cond.Type) == final && cond.IsFalse() {
			return fmt.Errorf("%s: %s is False: %s: %s: %w", what, cond.Type, cond.Reason, cond.Message, errFinal)
		}
	}
	return nil
}

// service checks a Knative Service's latest Revision, its PodAutoscaler and its Deployment.
func (c *Checker) service(ctx context.Context, want *servingv1.Service) (string, error) {
	var got servingv1.Service
	if err := c.getReconciled(ctx, ksvcs, want.Namespace, want.Name, &got, "ConfigurationsReady"); err != nil {
		return "", err
	}
	name := got.Status.LatestCreatedRevisionName
	if name == "" {
		return "", fmt.Errorf("Service %s: no Revision yet", want.Name)
	}
	var rev servingv1.Revision
	if err := c.getReconciled(ctx, revisions, want.Namespace, name, &rev, "ContainerHealthy"); err != nil {
		return "", err
	}
	var pa autoscalingv1alpha1.PodAutoscaler
	if err := c.get(ctx, podAutoscalers, want.Namespace, name, &pa); err != nil {
		return "", err
	}
	var dep appsv1.Deployment
	if err := c.get(ctx, deployments, want.Namespace, pa.Spec.ScaleTargetRef.Name, &dep); err != nil {
		return "", err
	}
	found := fmt.Sprintf("Revision %s, PodAutoscaler %s, Deployment %s", name, pa.Name, dep.Name)
	if diffs := compareRevision(want.Spec.Template, &rev, &pa, &dep); len(diffs) > 0 {
		return found, fmt.Errorf("%s: %w", strings.Join(diffs, "; "), errFinal)
	}
	return found, nil
}

// compareRevision lists where the Revision, PodAutoscaler and Deployment Serving made depart
// from the Service's template.
func compareRevision(tmpl servingv1.RevisionTemplateSpec, rev *servingv1.Revision, pa *autoscalingv1alpha1.PodAutoscaler, dep *appsv1.Deployment) []string {
	var diffs []string
	differ := func(what string, want, got any) {
		if fmt.Sprint(want) != fmt.Sprint(got) {
			diffs = append(diffs, fmt.Sprintf("%s: declared %v, got %v", what, want, got))
		}
	}
	for _, key := range sortedKeys(tmpl.Annotations) {
		differ("Revision annotation "+key, tmpl.Annotations[key], rev.Annotations[key])
		if strings.HasPrefix(key, autoscalingPrefix) {
			differ("PodAutoscaler annotation "+key, tmpl.Annotations[key], pa.Annotations[key])
		}
	}
	if cc := tmpl.Spec.ContainerConcurrency; cc != nil {
		differ("Revision containerConcurrency", *cc, deref(rev.Spec.ContainerConcurrency))
		differ("PodAutoscaler containerConcurrency", *cc, pa.Spec.ContainerConcurrency)
	}
	if ts := tmpl.Spec.TimeoutSeconds; ts != nil {
		differ("Revision timeoutSeconds", *ts, deref(rev.Spec.TimeoutSeconds))
	}
	differ("PodAutoscaler scale target", dep.Name, pa.Spec.ScaleTargetRef.Name)
	differ("Deployment images", images(tmpl.Spec.Containers), images(userContainers(dep.Spec.Template.Spec.Containers, tmpl.Spec.Containers)))
	return diffs
}

// containerSource checks that a ContainerSource has a SinkBinding of its own, to its sink, whose
// subject is the source's Deployment, running the declared images.
func (c *Checker) containerSource(ctx context.Context, want *sourcesv1.ContainerSource) (string, error) {
	var got sourcesv1.ContainerSource
	if err := c.getReconciled(ctx, containerSources, want.Namespace, want.Name, &got, ""); err != nil {
		return "", err
	}
	list, err := c.dyn.Resource(sinkBindings).Namespace(want.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list sinkbindings: %w", err)
	}
	var sb *sourcesv1.SinkBinding
	for _, u := range list.Items {
		if controlledBy(u.GetOwnerReferences(), got.UID) {
			sb = new(sourcesv1.SinkBinding)
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, sb); err != nil {
				return "", err
			}
		}
	}
	if sb == nil {
		return "", fmt.Errorf("ContainerSource %s: no SinkBinding controlled by it yet", want.Name)
	}
	var dep appsv1.Deployment
	if err := c.get(ctx, deployments, want.Namespace, sb.Spec.Subject.Name, &dep); err != nil {
		return "", err
	}
	found := fmt.Sprintf("SinkBinding %s, Deployment %s", sb.Name, dep.Name)
	var diffs []string
	if w, g := refString(want.Spec.Sink.Ref), refString(sb.Spec.Sink.Ref); w != g {
		diffs = append(diffs, fmt.Sprintf("SinkBinding sink: declared %s, got %s", w, g))
	}
	if sb.Spec.Subject.Kind != "Deployment" || !controlledBy(dep.OwnerReferences, got.UID) {
		diffs = append(diffs, fmt.Sprintf("SinkBinding subject %s %s is not the source's Deployment", sb.Spec.Subject.Kind, sb.Spec.Subject.Name))
	}
	if w, g := images(want.Spec.Template.Spec.Containers), images(dep.Spec.Template.Spec.Containers); w != g {
		diffs = append(diffs, fmt.Sprintf("Deployment images: declared %s, got %s", w, g))
	}
	if len(diffs) > 0 {
		return found, fmt.Errorf("%s: %w", strings.Join(diffs, "; "), errFinal)
	}
	return found, nil
}

// pingSource checks that a PingSource was admitted and reconciled with its schedule and sink.
func (c *Checker) pingSource(ctx context.Context, want *sourcesv1.PingSource) (string, error) {
	var got sourcesv1.PingSource
	if err := c.getReconciled(ctx, pingSources, want.Namespace, want.Name, &got, ""); err != nil {
		return "", err
	}
	found := fmt.Sprintf("generation %d reconciled, schedule %q", got.Generation, got.Spec.Schedule)
	if ready := got.Status.GetCondition("Ready"); ready != nil {
		// Informative: without a networking layer the sink has no address, and without a
		// kubelet the adapter never runs, so Ready is not expected to be True here.
		found += fmt.Sprintf(", Ready %s %s", ready.Status, ready.Reason)
	}
	if got.Spec.Schedule != want.Spec.Schedule || refString(got.Spec.Sink.Ref) != refString(want.Spec.Sink.Ref) {
		return found, fmt.Errorf("declared schedule %q to %s, got %q to %s: %w",
			want.Spec.Schedule, refString(want.Spec.Sink.Ref), got.Spec.Schedule, refString(got.Spec.Sink.Ref), errFinal)
	}
	return found, nil
}

// warningEvents reports the Warning events of a namespace: a pod a ReplicaSet could not
// create, a webhook refusing what a controller made, a controller's internal error.
func (c *Checker) warningEvents(ctx context.Context, ns string) Result {
	res := Result{Object: "namespace " + ns}
	list, err := c.dyn.Resource(events).Namespace(ns).List(ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
	if err != nil {
		res.Err = fmt.Errorf("list events: %w", err)
		return res
	}
	var warned []string
	expected := 0
	for _, u := range list.Items {
		var ev corev1.Event
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ev); err != nil {
			res.Err = err
			return res
		}
		if expectedWarning(ev) || c.createdSince(ctx, ns, ev) {
			expected++
			continue
		}
		warned = append(warned, fmt.Sprintf("%s %s: %s: %s", ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Message))
	}
	res.Found = fmt.Sprintf("no unexpected warning events (%d expected: sinks without an address, update conflicts retried, Deployments made after a reconciler looked)", expected)
	if len(warned) > 0 {
		res.Found = fmt.Sprintf("%d warning events", len(warned))
		res.Err = errors.New(strings.Join(warned, "\n  "))
	}
	return res
}

// expectedWarning tells the warnings that say nothing about the manifests. A Knative Service
// gets an address only once a Revision is ready, which takes a running pod, so every source and
// binding whose sink is one warns that it has none here (the PingSource reconciler's
// SinkNotFound, Knative's resolver's "address not set for" in the SinkBinding's). And two
// controllers writing one object at once make one of them lose the optimistic-concurrency race
// ("the object has been modified"); it reads the object again and retries.
func expectedWarning(ev corev1.Event) bool {
	return ev.Reason == "SinkNotFound" || strings.Contains(ev.Message, "address not set for") ||
		strings.Contains(ev.Message, "the object has been modified; please apply your changes to the latest version and try again")
}

// missingDeployment matches a reconciler's warning that a Deployment it needs does not exist.
var missingDeployment = regexp.MustCompile(`^deployments\.apps "([^"]+)" not found$`)

// createdSince tells a warning that a Deployment was missing when the Deployment exists now:
// the SinkBinding reconciler can look for a ContainerSource's Deployment before the
// ContainerSource reconciler has made it, and looks again later. A Deployment still missing
// stays a failure.
func (c *Checker) createdSince(ctx context.Context, ns string, ev corev1.Event) bool {
	name, ok := missingDeploymentName(ev)
	if !ok {
		return false
	}
	_, err := c.dyn.Resource(deployments).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	return err == nil
}

// missingDeploymentName is the Deployment a warning says is missing.
func missingDeploymentName(ev corev1.Event) (string, bool) {
	m := missingDeployment.FindStringSubmatch(ev.Message)
	if m == nil {
		return "", false
	}
	return m[1], true
}

func controlledBy(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, r := range refs {
		if r.UID == uid && r.Controller != nil && *r.Controller {
			return true
		}
	}
	return false
}

func refString(r *duckv1.KReference) string {
	if r == nil {
		return "<none>"
	}
	return r.APIVersion + " " + r.Kind + " " + r.Name
}

// userContainers keeps the containers of a Revision's Deployment named as in the template:
// Serving adds its queue-proxy beside them.
func userContainers(all, declared []corev1.Container) []corev1.Container {
	var out []corev1.Container
	for _, c := range all {
		if slices.ContainsFunc(declared, func(d corev1.Container) bool { return d.Name == c.Name }) {
			out = append(out, c)
		}
	}
	return out
}

func images(cs []corev1.Container) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name+"="+c.Image)
	}
	return strings.Join(out, ",")
}

func deref[T any](p *T) any {
	if p == nil {
		return "<unset>"
	}
	return *p
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
