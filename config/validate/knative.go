package validate

import (
	"context"

	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

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
