package validate

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	"knative.dev/serving/pkg/apis/autoscaling"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// Scaling checks that every Knative Service bounds its scale (max-scale), and the design's
// two fixed points: the metrics function runs exactly one pod, and deliver-low scales to zero.
func (c Checker) Scaling(s *Set) []Problem {
	var out []Problem
	for d, ksvc := range applied[*servingv1.Service](s) {
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
	for fc := range s.functionContainers() {
		fn, env, where := fc.fn, fc.env, fc.where()
		if c.Vars[fn.Config] == nil {
			continue
		}
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
		switch fc.Kind {
		case "Service":
			ksvc := fc.Doc.Object.(*servingv1.Service)
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
			src := fc.Doc.Object.(*sourcesv1.ContainerSource)
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
	for fc := range s.functionContainers() {
		if fc.Kind != "Service" {
			continue
		}
		v, ok := c.value(fc.fn, fc.env, "PULSE_DATABASE_MAX_CONNS")
		conns, err := strconv.Atoi(v)
		if !ok || err != nil {
			continue
		}
		maxScale, _ := intAnnotation(fc.Annotations, autoscaling.MaxScaleAnnotationKey)
		total += maxScale * conns
		terms = append(terms, fmt.Sprintf("%s %dx%d", fc.Doc.Name, maxScale, conns))
	}
	if total*10 > limit*9 {
		out = append(out, Problem{where, fmt.Sprintf("max_connections=%d leaves no headroom: the functions may open %d (%s)",
			limit, total, strings.Join(terms, " + "))})
	}
	return out
}
