package validate

import (
	"fmt"
	"slices"
	"strings"
)

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
		for fc := range s.functionContainers() {
			if v, ok := c.value(fc.fn, fc.env, name); ok {
				seen[v] = append(seen[v], fc.Doc.Name)
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
