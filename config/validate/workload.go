package validate

import (
	"fmt"
	"iter"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// Workload is an applied object that runs containers.
type Workload struct {
	Doc *Document
	// Kind is the object's kind: Service (Knative), ContainerSource, StatefulSet or
	// Deployment.
	Kind string
	// Pod is the pod template's spec.
	Pod *corev1.PodSpec
	// Annotations are the pod template's annotations (where Knative reads autoscaling).
	Annotations map[string]string
}

// Workloads returns the applied objects that run containers, in file order.
func (s *Set) Workloads() []Workload {
	var out []Workload
	for _, d := range s.Applied {
		switch o := d.Object.(type) {
		case *servingv1.Service:
			out = append(out, Workload{Doc: d, Kind: "Service", Pod: &o.Spec.Template.Spec.PodSpec,
				Annotations: o.Spec.Template.Annotations})
		case *sourcesv1.ContainerSource:
			out = append(out, Workload{Doc: d, Kind: "ContainerSource", Pod: &o.Spec.Template.Spec,
				Annotations: o.Spec.Template.Annotations})
		case *appsv1.StatefulSet:
			out = append(out, Workload{Doc: d, Kind: "StatefulSet", Pod: &o.Spec.Template.Spec,
				Annotations: o.Spec.Template.Annotations})
		case *appsv1.Deployment:
			out = append(out, Workload{Doc: d, Kind: "Deployment", Pod: &o.Spec.Template.Spec,
				Annotations: o.Spec.Template.Annotations})
		}
	}
	return out
}

// functionContainer is a container that runs one of Functions, with the workload it belongs
// to and its resolved environment.
type functionContainer struct {
	Workload
	ctr corev1.Container
	fn  Function
	env map[string]EnvValue
}

// where names the container in problem reports.
func (fc functionContainer) where() string { return fc.Doc.String() + " " + containerName(fc.ctr) }

// functionContainers yields the containers of the applied workloads that run a function, in
// file order. The environment problems are left to Env, which reports them once.
func (s *Set) functionContainers() iter.Seq[functionContainer] {
	return func(yield func(functionContainer) bool) {
		for _, w := range s.Workloads() {
			for _, ctr := range w.Pod.Containers {
				fn, ok := FunctionOf(ctr.Image)
				if !ok {
					continue
				}
				env, _ := s.Env(w.Doc.Namespace, ctr)
				if !yield(functionContainer{w, ctr, fn, env}) {
					return
				}
			}
		}
	}
}

// EnvValue is one variable of a container's environment and where it comes from.
type EnvValue struct {
	Name string
	// Value is the value the container gets; for a Secret it is the template's placeholder.
	Value string
	// Source says where the value comes from: "value", "ConfigMap NAME" or "Secret NAME key KEY".
	Source string
	// Secret is true when the value comes from a Secret.
	Secret bool
}

// Env resolves a container's environment from its env and envFrom entries and the ConfigMaps
// and Secrets (applied or templates) they name, in the order Kubernetes applies them: envFrom
// first, then env, a later entry overriding an earlier one. It reports references to missing
// objects or keys, optional references (a typo would go unnoticed), and a variable set twice.
func (s *Set) Env(namespace string, c corev1.Container) (map[string]EnvValue, []string) {
	env := map[string]EnvValue{}
	var problems []string
	set := func(v EnvValue) {
		if prev, ok := env[v.Name]; ok {
			problems = append(problems, fmt.Sprintf("%s is set twice (%s and %s)", v.Name, prev.Source, v.Source))
		}
		env[v.Name] = v
	}
	for _, from := range c.EnvFrom {
		if from.Prefix != "" {
			problems = append(problems, fmt.Sprintf("envFrom prefix %q: variables must keep their pkg/config names", from.Prefix))
		}
		switch {
		case from.ConfigMapRef != nil:
			ref := from.ConfigMapRef
			if ref.Optional != nil && *ref.Optional {
				problems = append(problems, fmt.Sprintf("envFrom ConfigMap %s is optional: a missing one would go unnoticed", ref.Name))
			}
			cm := s.findConfigMap(namespace, ref.Name)
			if cm == nil {
				problems = append(problems, fmt.Sprintf("envFrom names ConfigMap %s, which no manifest defines", ref.Name))
				continue
			}
			for _, k := range sortedKeys(cm.Data) {
				set(EnvValue{Name: k, Value: cm.Data[k], Source: "ConfigMap " + ref.Name})
			}
			if len(cm.BinaryData) > 0 {
				problems = append(problems, fmt.Sprintf("ConfigMap %s has binaryData, which envFrom skips", ref.Name))
			}
		case from.SecretRef != nil:
			ref := from.SecretRef
			sec := s.findSecret(namespace, ref.Name)
			if sec == nil {
				problems = append(problems, fmt.Sprintf("envFrom names Secret %s, which no manifest or template defines", ref.Name))
				continue
			}
			for _, k := range sortedKeys(secretData(sec)) {
				set(EnvValue{Name: k, Value: secretData(sec)[k], Source: "Secret " + ref.Name, Secret: true})
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			set(EnvValue{Name: e.Name, Value: e.Value, Source: "value"})
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm := s.findConfigMap(namespace, ref.Name)
			v, ok := "", false
			if cm != nil {
				v, ok = cm.Data[ref.Key]
			}
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: ConfigMap %s has no key %s", e.Name, ref.Name, ref.Key))
			}
			if ref.Optional != nil && *ref.Optional {
				problems = append(problems, fmt.Sprintf("%s: configMapKeyRef is optional: a missing key would go unnoticed", e.Name))
			}
			set(EnvValue{Name: e.Name, Value: v, Source: "ConfigMap " + ref.Name})
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			sec := s.findSecret(namespace, ref.Name)
			v, ok := "", false
			if sec != nil {
				v, ok = secretData(sec)[ref.Key]
			}
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: Secret %s (applied or template) has no key %s", e.Name, ref.Name, ref.Key))
			}
			if ref.Optional != nil && *ref.Optional {
				problems = append(problems, fmt.Sprintf("%s: secretKeyRef is optional: a missing key would go unnoticed", e.Name))
			}
			set(EnvValue{Name: e.Name, Value: v, Source: "Secret " + ref.Name + " key " + ref.Key, Secret: true})
		default:
			// fieldRef or resourceFieldRef: a value only the cluster knows.
			set(EnvValue{Name: e.Name, Source: "valueFrom"})
		}
	}
	return env, problems
}

// secretData merges a Secret's data and stringData, as the API server does.
func secretData(s *corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// containerName names a container in problem reports.
func containerName(c corev1.Container) string {
	if c.Name == "" {
		return "container " + strings.TrimPrefix(c.Image, KoPrefix)
	}
	return "container " + c.Name
}
