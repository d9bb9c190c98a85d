package validate

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/pulse-knative/pulse/pkg/ceserver"
)

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
