package validate

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/pulse-knative/pulse/pkg/queue"
)

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

// Schedules checks the PingSources: each sends {"job": NAME} as application/json to the cron
// function, every job functions/cron knows has exactly one schedule, and none is unknown.
func (c Checker) Schedules(s *Set) []Problem {
	var out []Problem
	ksvcs := s.Services()
	scheduled := map[string]int{}
	for d, ps := range applied[*sourcesv1.PingSource](s) {
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
