package validate

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
)

// Datastores checks the development datastores: marked dev-only, and Redis with its append-only
// file on.
func (c Checker) Datastores(s *Set) []Problem {
	var out []Problem
	for d, sts := range applied[*appsv1.StatefulSet](s) {
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
