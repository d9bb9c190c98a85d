package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	mutatingWebhooks   = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"}
	validatingWebhooks = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"}
)

// WaitWebhooks waits until every admission webhook served from one of the namespaces carries
// a CA bundle: Knative's webhooks make their own certificate at start-up and write it into
// their configurations, and until then the API server cannot call them.
func (c *Checker) WaitWebhooks(ctx context.Context, namespaces ...string) error {
	_, err := c.eventually(ctx, func(ctx context.Context) (string, error) {
		var pending []string
		for _, gvr := range []schema.GroupVersionResource{mutatingWebhooks, validatingWebhooks} {
			list, err := c.dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
			if err != nil {
				return "", err
			}
			for _, u := range list.Items {
				// Both kinds have the same clientConfig; the mutating type reads either.
				var cfg admissionv1.MutatingWebhookConfiguration
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &cfg); err != nil {
					return "", err
				}
				for _, w := range cfg.Webhooks {
					svc := w.ClientConfig.Service
					if svc != nil && slices.Contains(namespaces, svc.Namespace) && len(w.ClientConfig.CABundle) == 0 {
						pending = append(pending, w.Name)
					}
				}
			}
		}
		if len(pending) > 0 {
			return "", fmt.Errorf("webhooks without a CA bundle yet: %s", strings.Join(pending, ", "))
		}
		return "", nil
	})
	return err
}
