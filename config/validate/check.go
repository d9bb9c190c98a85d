package validate

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
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
	// Vars are the variables of each pkg/config struct, by struct name (AllVars).
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
		c.Connections, c.Shared, c.Schedules, c.Alternatives, c.Datastores, c.Channels,
	} {
		out = append(out, check(s)...)
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
