package validate

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"knative.dev/serving/pkg/apis/autoscaling"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// Problem is one rule a manifest breaks.
type Problem struct {
	// Where names the document, and the container when the problem is about one.
	Where string
	// What says what is wrong.
	What string
}

func (p Problem) String() string { return p.Where + ": " + p.What }

// Checker holds what the manifests are checked against.
type Checker struct {
	// Vars are the variables of each pkg/config struct, by struct name (ConfigTool.AllVars).
	// The environment checks skip a function whose struct is not there.
	Vars map[string][]Var
	// Jobs are the job names functions/cron understands; nil skips the check that each has a
	// PingSource.
	Jobs []string
}

// Check runs every check on the set.
func (c Checker) Check(s *Set) []Problem {
	var out []Problem
	for _, check := range []func(*Set) []Problem{
		c.Knative, c.Security, c.Env, c.References, c.Visibility, c.Scaling, c.Timeouts,
		c.Connections, c.Shared, c.Schedules, c.Alternatives, c.Datastores,
	} {
		out = append(out, check(s)...)
	}
	return out
}

// Knative runs Knative's own defaulting and validation, as its admission webhooks would on
// create, on every Knative Service, ContainerSource and PingSource. Warnings count as problems:
// Knative warns, for one, about insecure security-context defaults.
func (c Checker) Knative(s *Set) []Problem {
	ctx := apis.WithinCreate(context.Background())
	var out []Problem
	for _, d := range s.Applied {
		var errs *apis.FieldError
		switch o := d.Object.(type) {
		case *servingv1.Service:
			o = o.DeepCopy()
			o.SetDefaults(ctx)
			errs = o.Validate(ctx)
		case *sourcesv1.ContainerSource:
			o = o.DeepCopy()
			o.SetDefaults(ctx)
			errs = o.Validate(ctx)
		case *sourcesv1.PingSource:
			o = o.DeepCopy()
			o.SetDefaults(ctx)
			errs = o.Validate(ctx)
		default:
			continue
		}
		if e := errs.Filter(apis.ErrorLevel); e != nil {
			out = append(out, Problem{d.String(), "Knative validation: " + e.Error()})
		}
		if w := errs.Filter(apis.WarningLevel); w != nil {
			out = append(out, Problem{d.String(), "Knative validation warning: " + w.Error()})
		}
	}
	return out
}

// Security holds every container to the restricted Pod Security Standard and more: non-root,
// no privilege escalation, every capability dropped, RuntimeDefault (or Localhost) seccomp, a
// read-only root filesystem, CPU and memory requests and limits. Functions must not mount a
// service account token they never use, and Knative Services must probe the functions' health
// endpoints on the serving port.
func (c Checker) Security(s *Set) []Problem {
	var out []Problem
	for _, w := range s.Workloads() {
		pod := w.Pod
		if len(pod.Containers) == 0 {
			out = append(out, Problem{w.Doc.String(), "no containers"})
		}
		_, pulse := functionOfPod(pod)
		if pulse && (pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken) {
			out = append(out, Problem{w.Doc.String(), "automountServiceAccountToken must be false: the functions never call the Kubernetes API"})
		}
		if pod.HostNetwork || pod.HostPID || pod.HostIPC {
			out = append(out, Problem{w.Doc.String(), "host namespaces are not allowed"})
		}
		containers := append(append([]corev1.Container(nil), pod.InitContainers...), pod.Containers...)
		for _, ctr := range containers {
			where := w.Doc.String() + " " + containerName(ctr)
			for _, p := range containerSecurity(ctr, pod.SecurityContext) {
				out = append(out, Problem{where, p})
			}
			for _, p := range probes(w.Kind, ctr) {
				out = append(out, Problem{where, p})
			}
		}
	}
	return out
}

func containerSecurity(ctr corev1.Container, pod *corev1.PodSecurityContext) []string {
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	var out []string
	sc := ctr.SecurityContext
	if sc == nil {
		return append(out, "no securityContext: it must run as non-root with a read-only root filesystem, "+
			"no privilege escalation, every capability dropped and the RuntimeDefault seccomp profile")
	}
	if !isTrue(sc.RunAsNonRoot) && !(sc.RunAsNonRoot == nil && isTrue(pod.RunAsNonRoot)) {
		out = append(out, "securityContext.runAsNonRoot must be true")
	}
	if (sc.RunAsUser != nil && *sc.RunAsUser == 0) || (sc.RunAsUser == nil && pod.RunAsUser != nil && *pod.RunAsUser == 0) {
		out = append(out, "securityContext.runAsUser must not be 0")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		out = append(out, "securityContext.allowPrivilegeEscalation must be false")
	}
	if isTrue(sc.Privileged) {
		out = append(out, "securityContext.privileged must not be true")
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		out = append(out, "securityContext.readOnlyRootFilesystem must be true")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		out = append(out, "securityContext.capabilities.drop must contain ALL")
	}
	if sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
		out = append(out, fmt.Sprintf("securityContext.capabilities.add must be empty, not %v", sc.Capabilities.Add))
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = pod.SeccompProfile
	}
	if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
		out = append(out, "securityContext.seccompProfile.type must be RuntimeDefault (or Localhost)")
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := ctr.Resources.Requests[res]; !ok {
			out = append(out, fmt.Sprintf("resources.requests.%s is not set", res))
		}
		if _, ok := ctr.Resources.Limits[res]; !ok {
			out = append(out, fmt.Sprintf("resources.limits.%s is not set", res))
		}
	}
	return out
}

// probes checks that a container is probed: a Knative Service's on the functions' health
// endpoints (no port: Knative probes the serving port), a StatefulSet's or Deployment's in any
// way. The stream sources serve no HTTP and have no probes.
func probes(kind string, ctr corev1.Container) []string {
	var out []string
	switch kind {
	case "Service":
		for _, p := range []struct {
			field, path string
			probe       *corev1.Probe
		}{
			{"readinessProbe", ceserver.ReadyPath, ctr.ReadinessProbe},
			{"livenessProbe", ceserver.LivePath, ctr.LivenessProbe},
		} {
			switch {
			case p.probe == nil || p.probe.HTTPGet == nil:
				out = append(out, fmt.Sprintf("%s must be an httpGet of %s", p.field, p.path))
			case p.probe.HTTPGet.Path != p.path:
				out = append(out, fmt.Sprintf("%s.httpGet.path is %q, want %q", p.field, p.probe.HTTPGet.Path, p.path))
			case p.probe.HTTPGet.Port.String() != "0":
				out = append(out, fmt.Sprintf("%s.httpGet.port must be left out: Knative probes the serving port", p.field))
			}
		}
	case "StatefulSet", "Deployment":
		if ctr.ReadinessProbe == nil {
			out = append(out, "no readinessProbe")
		}
		if ctr.LivenessProbe == nil {
			out = append(out, "no livenessProbe")
		}
	}
	return out
}

// Env checks each Pulse container's environment against its function's pkg/config struct:
// every variable it sets exists in the struct, every variable the struct requires without a
// default is set (or injected by Knative), credentials come from Secrets, the variables Knative
// sets are left alone, and every ConfigMap and Secret it names exists with the keys it reads.
func (c Checker) Env(s *Set) []Problem {
	var out []Problem
	for _, w := range s.Workloads() {
		for _, ctr := range w.Pod.Containers {
			where := w.Doc.String() + " " + containerName(ctr)
			env, problems := s.Env(w.Doc.Namespace, ctr)
			for _, p := range problems {
				out = append(out, Problem{where, p})
			}
			for _, name := range sortedKeys(env) {
				if reservedVars[name] {
					out = append(out, Problem{where, name + " is set by Knative: the manifest must not set it"})
				}
			}
			fn, ok := FunctionOf(ctr.Image)
			if !ok {
				if strings.HasPrefix(ctr.Image, KoPrefix) {
					out = append(out, Problem{where, "image " + ctr.Image + " is not in validate.Functions: add it, with its pkg/config struct"})
				}
				continue
			}
			vars, ok := c.Vars[fn.Config]
			if !ok {
				// Its struct has not landed in pkg/config yet; the tests report the skip.
				continue
			}
			known := map[string]Var{}
			for _, v := range vars {
				known[v.Name] = v
			}
			for _, name := range sortedKeys(env) {
				v := env[name]
				if _, ok := known[name]; !ok && !reservedVars[name] {
					out = append(out, Problem{where, fmt.Sprintf("%s (from %s) is not a variable of config.%s", name, v.Source, fn.Config)})
				}
				if SecretVars[name] && !v.Secret {
					out = append(out, Problem{where, fmt.Sprintf("%s carries credentials: it must come from a Secret, not %s", name, v.Source)})
				}
			}
			injected := Injected[w.Kind]
			for _, v := range vars {
				if _, set := env[v.Name]; v.Needed() && !set && !slices.Contains(injected, v.Name) {
					out = append(out, Problem{where, fmt.Sprintf("%s is required by config.%s and has no default, but the manifest does not set it", v.Name, fn.Config)})
				}
			}
			if v, ok := env["PULSE_INGEST_AUTH"]; ok && v.Value == "none" {
				out = append(out, Problem{where, "PULSE_INGEST_AUTH=none is for local runs only"})
			}
		}
	}
	return out
}

// References checks that every namespaced object is in a namespace the manifests create and
// that every sink names a Knative Service the manifests define, templates included.
func (c Checker) References(s *Set) []Problem {
	var out []Problem
	namespaces := map[string]bool{}
	for _, d := range s.Applied {
		if d.APIVersion == "v1" && d.Kind == "Namespace" {
			namespaces[d.Name] = true
		}
	}
	for _, d := range s.All() {
		if d.Kind == "Namespace" {
			continue
		}
		if d.Namespace == "" {
			out = append(out, Problem{d.String(), "metadata.namespace is not set: it would land in whatever namespace kubectl defaults to"})
		} else if !namespaces[d.Namespace] {
			out = append(out, Problem{d.String(), "namespace " + d.Namespace + " is not created by any manifest"})
		}
		sink, ok := sinkOf(d)
		if !ok {
			continue
		}
		if sink.Ref == nil {
			out = append(out, Problem{d.String(), "the sink must be a ref to a Knative Service, not a URI"})
			continue
		}
		ref := sink.Ref
		ns := ref.Namespace
		if ns == "" {
			ns = d.Namespace
		}
		if ref.APIVersion != "serving.knative.dev/v1" || ref.Kind != "Service" {
			out = append(out, Problem{d.String(), fmt.Sprintf("sink %s %s: want a serving.knative.dev/v1 Service", ref.APIVersion, ref.Kind)})
			continue
		}
		if s.Find(ref.APIVersion, ref.Kind, ns, ref.Name) == nil {
			out = append(out, Problem{d.String(), fmt.Sprintf("sink names Service %s/%s, which no manifest defines", ns, ref.Name)})
		}
	}
	return out
}

// sinkOf returns a source's sink: from the typed sources, or spec.sink of any other kind
// (the RedisStreamSource alternative).
func sinkOf(d *Document) (duckv1.Destination, bool) {
	switch o := d.Object.(type) {
	case *sourcesv1.ContainerSource:
		return o.Spec.Sink, true
	case *sourcesv1.PingSource:
		return o.Spec.Sink, true
	}
	if d.Object != nil {
		return duckv1.Destination{}, false
	}
	spec, _ := d.Fields["spec"].(map[string]any)
	raw, ok := spec["sink"]
	if !ok {
		return duckv1.Destination{}, false
	}
	b, err := json.Marshal(raw)
	var dest duckv1.Destination
	if err == nil {
		err = json.Unmarshal(b, &dest)
	}
	return dest, err == nil
}

// Visibility checks that only the public functions are reachable from outside the cluster:
// every other Knative Service carries the cluster-local label, and no Kubernetes Service is a
// LoadBalancer or a NodePort.
func (c Checker) Visibility(s *Set) []Problem {
	var out []Problem
	for _, d := range s.Applied {
		switch o := d.Object.(type) {
		case *servingv1.Service:
			fn, ok := functionOfPod(&o.Spec.Template.Spec.PodSpec)
			if !ok {
				out = append(out, Problem{d.String(), "runs no function of validate.Functions: add it there"})
				continue
			}
			local := o.Labels["networking.knative.dev/visibility"] == "cluster-local"
			if fn.Public && local {
				out = append(out, Problem{d.String(), fn.Name() + " is public: it must not be cluster-local"})
			}
			if !fn.Public && !local {
				out = append(out, Problem{d.String(), "internal Service: metadata.labels must have networking.knative.dev/visibility: cluster-local"})
			}
			if _, ok := o.Spec.Template.Labels["networking.knative.dev/visibility"]; ok {
				out = append(out, Problem{d.String(), "the visibility label belongs on the Service's metadata, not its template"})
			}
		case *corev1.Service:
			if o.Spec.Type == corev1.ServiceTypeLoadBalancer || o.Spec.Type == corev1.ServiceTypeNodePort {
				out = append(out, Problem{d.String(), fmt.Sprintf("type %s exposes it outside the cluster", o.Spec.Type)})
			}
		}
	}
	return out
}

// Scaling checks that every Knative Service bounds its scale (max-scale), and the design's
// two fixed points: the metrics function runs exactly one pod, and deliver-low scales to zero.
func (c Checker) Scaling(s *Set) []Problem {
	var out []Problem
	for _, d := range s.Applied {
		ksvc, ok := d.Object.(*servingv1.Service)
		if !ok {
			continue
		}
		ann := ksvc.Spec.Template.Annotations
		minScale, minOK := intAnnotation(ann, autoscaling.MinScaleAnnotationKey)
		maxScale, maxOK := intAnnotation(ann, autoscaling.MaxScaleAnnotationKey)
		if !minOK || !maxOK || maxScale < 1 {
			out = append(out, Problem{d.String(), "spec.template must set min-scale and a positive max-scale: unbounded scale means unbounded database connections"})
			continue
		}
		fn, _ := functionOfPod(&ksvc.Spec.Template.Spec.PodSpec)
		switch fn.Name() {
		case "metrics":
			if minScale != 1 || maxScale != 1 {
				out = append(out, Problem{d.String(), "metrics must run exactly one pod (min-scale = max-scale = 1)"})
			}
		case "deliver-low":
			if minScale != 0 {
				out = append(out, Problem{d.String(), "deliver-low must scale to zero (min-scale 0)"})
			}
		}
	}
	return out
}

// Timeouts checks that the timeouts along each request path fit together: a Knative Service's
// timeoutSeconds is set, covers the function's own budget (PULSE_SEND_TIMEOUT,
// PULSE_CRON_BUDGET, PULSE_METRICS_SCRAPE_TIMEOUT) and ends no later than its server's PULSE_HTTP_WRITE_TIMEOUT and before
// its lease; a stream source waits longer than its sink's timeoutSeconds, feeds the deliver
// function of its own priority, and may keep enough events in flight to bring its sink to
// max-scale at its concurrency target.
func (c Checker) Timeouts(s *Set) []Problem {
	var out []Problem
	ksvcs := s.Services()
	for _, w := range s.Workloads() {
		for _, ctr := range w.Pod.Containers {
			fn, ok := FunctionOf(ctr.Image)
			if !ok || c.Vars[fn.Config] == nil {
				continue
			}
			where := w.Doc.String() + " " + containerName(ctr)
			env, _ := s.Env(w.Doc.Namespace, ctr)
			duration := func(name string) (time.Duration, bool) {
				v, ok := c.value(fn, env, name)
				if !ok {
					return 0, false
				}
				d, err := time.ParseDuration(v)
				if err != nil {
					out = append(out, Problem{where, fmt.Sprintf("%s=%q is not a duration", name, v)})
					return 0, false
				}
				return d, true
			}
			switch w.Kind {
			case "Service":
				ksvc := w.Doc.Object.(*servingv1.Service)
				if ksvc.Spec.Template.Spec.TimeoutSeconds == nil {
					out = append(out, Problem{where, "spec.template.spec.timeoutSeconds must be set for what the function does, not left at Knative's default"})
					continue
				}
				timeout := time.Duration(*ksvc.Spec.Template.Spec.TimeoutSeconds) * time.Second
				if d, ok := duration("PULSE_HTTP_WRITE_TIMEOUT"); ok && d < timeout {
					out = append(out, Problem{where, fmt.Sprintf("timeoutSeconds (%s) outlasts PULSE_HTTP_WRITE_TIMEOUT (%s): the server would cut requests Knative still waits for", timeout, d)})
				}
				if d, ok := duration("PULSE_SEND_TIMEOUT"); ok && d >= timeout {
					out = append(out, Problem{where, fmt.Sprintf("timeoutSeconds (%s) must be longer than PULSE_SEND_TIMEOUT (%s) plus the claim and the record", timeout, d)})
				}
				if d, ok := duration("PULSE_LEASE"); ok && d <= timeout {
					out = append(out, Problem{where, fmt.Sprintf("PULSE_LEASE (%s) must outlast timeoutSeconds (%s): cron would hand back sends still running", d, timeout)})
				}
				for _, budget := range []string{"PULSE_CRON_BUDGET", "PULSE_METRICS_SCRAPE_TIMEOUT"} {
					if d, ok := duration(budget); ok && d >= timeout {
						out = append(out, Problem{where, fmt.Sprintf("timeoutSeconds (%s) must be longer than %s (%s)", timeout, budget, d)})
					}
				}
			case "ContainerSource":
				src := w.Doc.Object.(*sourcesv1.ContainerSource)
				if src.Spec.Sink.Ref == nil {
					continue // References reports it.
				}
				sink, ok := ksvcs[src.Spec.Sink.Ref.Name]
				if !ok {
					continue // References reports it.
				}
				if priority, ok := c.value(fn, env, "PULSE_PRIORITY"); ok {
					if sinkFn, _ := functionOfPod(&sink.Spec.Template.Spec.PodSpec); sinkFn.Name() != "deliver-"+priority {
						out = append(out, Problem{where, fmt.Sprintf("PULSE_PRIORITY=%s feeds Service %s, which runs %s", priority, sink.Name, sinkFn.Name())})
					}
				}
				if sinkTimeout := sink.Spec.Template.Spec.TimeoutSeconds; sinkTimeout != nil {
					t := time.Duration(*sinkTimeout) * time.Second
					if d, ok := duration("PULSE_SINK_TIMEOUT"); ok && d <= t {
						out = append(out, Problem{where, fmt.Sprintf("PULSE_SINK_TIMEOUT (%s) must outlast the sink's timeoutSeconds (%s)", d, t)})
					}
				}
				v, ok := c.value(fn, env, "PULSE_STREAM_CONCURRENCY")
				conc, err := strconv.Atoi(v)
				if !ok || err != nil {
					continue
				}
				maxScale, _ := intAnnotation(sink.Spec.Template.Annotations, autoscaling.MaxScaleAnnotationKey)
				target := concurrencyTarget(sink)
				if want := maxScale * int(math.Ceil(target)); conc < want {
					out = append(out, Problem{where, fmt.Sprintf("PULSE_STREAM_CONCURRENCY (%d) keeps %s below max-scale: it needs max-scale x target = %d x %g = %d events in flight",
						conc, sink.Name, maxScale, target, want)})
				}
			}
		}
	}
	return out
}

// concurrencyTarget is the per-pod concurrency Knative aims at: the target annotation, else
// Knative's default of 100 capped by containerConcurrency.
func concurrencyTarget(ksvc *servingv1.Service) float64 {
	if v, ok := ksvc.Spec.Template.Annotations[autoscaling.TargetAnnotationKey]; ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	if cc := ksvc.Spec.Template.Spec.ContainerConcurrency; cc != nil && *cc > 0 && *cc < 100 {
		return float64(*cc)
	}
	return 100
}

var maxConnectionsArg = regexp.MustCompile(`^max_connections=(\d+)$`)

// Connections checks that the database connections every function may open at max-scale
// (max-scale x PULSE_DATABASE_MAX_CONNS, summed) fit within 90 % of the max_connections the
// PostgreSQL StatefulSet starts with, leaving room for migrations and CLI sessions. Without a
// PostgreSQL StatefulSet (managed PostgreSQL) there is nothing to compare with.
func (c Checker) Connections(s *Set) []Problem {
	var out []Problem
	limit := 0
	var where string
	for _, w := range s.Workloads() {
		for _, ctr := range w.Pod.Containers {
			for _, arg := range append(append([]string(nil), ctr.Command...), ctr.Args...) {
				if m := maxConnectionsArg.FindStringSubmatch(arg); m != nil {
					limit, _ = strconv.Atoi(m[1])
					where = w.Doc.String()
				}
			}
		}
	}
	if limit == 0 {
		return nil
	}
	total := 0
	var terms []string
	for _, d := range s.Applied {
		ksvc, ok := d.Object.(*servingv1.Service)
		if !ok {
			continue
		}
		for _, ctr := range ksvc.Spec.Template.Spec.Containers {
			fn, ok := FunctionOf(ctr.Image)
			if !ok {
				continue
			}
			env, _ := s.Env(d.Namespace, ctr)
			v, ok := c.value(fn, env, "PULSE_DATABASE_MAX_CONNS")
			conns, err := strconv.Atoi(v)
			if !ok || err != nil {
				continue
			}
			maxScale, _ := intAnnotation(ksvc.Spec.Template.Annotations, autoscaling.MaxScaleAnnotationKey)
			total += maxScale * conns
			terms = append(terms, fmt.Sprintf("%s %dx%d", ksvc.Name, maxScale, conns))
		}
	}
	if total*10 > limit*9 {
		out = append(out, Problem{where, fmt.Sprintf("max_connections=%d leaves no headroom: the functions may open %d (%s)",
			limit, total, strings.Join(terms, " + "))})
	}
	return out
}

// sharedVars must have one value across every container that reads them: the key prefix
// every function builds Redis keys with, and the consumer group the stream sources read with
// and the metrics function measures.
var sharedVars = []string{"PULSE_REDIS_PREFIX", "PULSE_STREAM_GROUP"}

// Shared checks that the variables several functions must agree on have one value (as set, or
// the default) in every container whose struct reads them.
func (c Checker) Shared(s *Set) []Problem {
	var out []Problem
	for _, name := range sharedVars {
		seen := map[string][]string{}
		for _, w := range s.Workloads() {
			for _, ctr := range w.Pod.Containers {
				fn, ok := FunctionOf(ctr.Image)
				if !ok {
					continue
				}
				env, _ := s.Env(w.Doc.Namespace, ctr)
				if v, ok := c.value(fn, env, name); ok {
					seen[v] = append(seen[v], w.Doc.Name)
				}
			}
		}
		if len(seen) > 1 {
			var values []string
			for _, v := range sortedKeys(seen) {
				values = append(values, fmt.Sprintf("%q in %s", v, strings.Join(seen[v], ", ")))
			}
			out = append(out, Problem{name, "must have one value everywhere, not " + strings.Join(values, "; ")})
		}
	}
	return out
}

// Schedules checks the PingSources: each sends {"job": NAME} as application/json to the cron
// function, every job functions/cron knows has exactly one schedule, and none is unknown.
func (c Checker) Schedules(s *Set) []Problem {
	var out []Problem
	ksvcs := s.Services()
	scheduled := map[string]int{}
	for _, d := range s.Applied {
		ps, ok := d.Object.(*sourcesv1.PingSource)
		if !ok {
			continue
		}
		if ps.Spec.ContentType != "application/json" {
			out = append(out, Problem{d.String(), "contentType must be application/json"})
		}
		var data struct {
			Job string `json:"job"`
		}
		if err := json.Unmarshal([]byte(ps.Spec.Data), &data); err != nil || data.Job == "" {
			out = append(out, Problem{d.String(), `data must be a JSON object naming the job, such as {"job":"release"}`})
			continue
		}
		scheduled[data.Job]++
		if c.Jobs != nil && !slices.Contains(c.Jobs, data.Job) {
			out = append(out, Problem{d.String(), fmt.Sprintf("job %q is not one functions/cron knows (%s)", data.Job, strings.Join(c.Jobs, ", "))})
		}
		if ref := ps.Spec.Sink.Ref; ref != nil {
			if sink, ok := ksvcs[ref.Name]; ok {
				if fn, _ := functionOfPod(&sink.Spec.Template.Spec.PodSpec); fn.Name() != "cron" {
					out = append(out, Problem{d.String(), "the sink must be the cron function, not " + fn.Name()})
				}
			}
		}
	}
	for _, job := range c.Jobs {
		if n := scheduled[job]; n != 1 {
			out = append(out, Problem{"PingSources", fmt.Sprintf("job %q has %d schedules, want 1", job, n)})
		}
	}
	return out
}

// Alternatives checks the RedisStreamSource alternative: each source reads the stream of the
// priority its sink delivers, under the key prefix the functions use.
func (c Checker) Alternatives(s *Set) []Problem {
	var out []Problem
	prefix := "pulse"
	if cm := s.findConfigMap("pulse", "pulse-common"); cm != nil && cm.Data["PULSE_REDIS_PREFIX"] != "" {
		prefix = cm.Data["PULSE_REDIS_PREFIX"]
	}
	ksvcs := s.Services()
	for _, d := range s.Templates {
		if d.Kind != "RedisStreamSource" {
			continue
		}
		sink, ok := sinkOf(d)
		if !ok || sink.Ref == nil {
			continue // References reports it.
		}
		ksvc, ok := ksvcs[sink.Ref.Name]
		if !ok {
			continue // References reports it.
		}
		fn, _ := functionOfPod(&ksvc.Spec.Template.Spec.PodSpec)
		priority, ok := strings.CutPrefix(fn.Name(), "deliver-")
		if !ok {
			out = append(out, Problem{d.String(), "the sink must be a deliver function"})
			continue
		}
		spec, _ := d.Fields["spec"].(map[string]any)
		if want := queue.NewKeys(prefix).Stream(priority); spec["stream"] != want {
			out = append(out, Problem{d.String(), fmt.Sprintf("spec.stream is %v, want %q (the %s stream under prefix %q)", spec["stream"], want, priority, prefix)})
		}
	}
	return out
}

// Datastores checks the development datastores: marked dev-only, and Redis with its append-only
// file on.
func (c Checker) Datastores(s *Set) []Problem {
	var out []Problem
	for _, d := range s.Applied {
		sts, ok := d.Object.(*appsv1.StatefulSet)
		if !ok {
			continue
		}
		if sts.Labels["pulse.dev/dev-only"] != "true" {
			out = append(out, Problem{d.String(), `datastores here are for development: label them pulse.dev/dev-only: "true"`})
		}
		if len(sts.Spec.VolumeClaimTemplates) == 0 {
			out = append(out, Problem{d.String(), "no volumeClaimTemplates: the data would not survive the pod"})
		}
		for _, ctr := range sts.Spec.Template.Spec.Containers {
			args := append(append([]string(nil), ctr.Command...), ctr.Args...)
			if slices.Contains(args, "redis-server") {
				if i := slices.Index(args, "--appendonly"); i < 0 || i+1 >= len(args) || args[i+1] != "yes" {
					out = append(out, Problem{d.String(), "redis-server must run with --appendonly yes"})
				}
			}
		}
	}
	return out
}

// value is a variable's value in a container: as set, else the default of the function's
// struct. It is false when neither is known.
func (c Checker) value(fn Function, env map[string]EnvValue, name string) (string, bool) {
	if v, ok := env[name]; ok {
		return v.Value, v.Source != "valueFrom"
	}
	for _, v := range c.Vars[fn.Config] {
		if v.Name == name {
			return v.Default, v.Default != ""
		}
	}
	return "", false
}

// functionOfPod returns the function the pod's first Pulse container runs.
func functionOfPod(pod *corev1.PodSpec) (Function, bool) {
	for _, ctr := range pod.Containers {
		if fn, ok := FunctionOf(ctr.Image); ok {
			return fn, true
		}
	}
	return Function{}, false
}

func intAnnotation(ann map[string]string, key string) (int, bool) {
	v, ok := ann[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}

func isTrue(b *bool) bool { return b != nil && *b }
