package ceserver

import (
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Probe headers of Kubernetes and Knative's networking layer.
const (
	kubeProbePrefix = "kube-probe/"     // User-Agent of the kubelet's HTTP probes
	probeHeader     = "K-Network-Probe" // set to "probe" by Knative's routers checking a pod
	probeValue      = "probe"           // the value of probeHeader
	probeHashHeader = "K-Network-Hash"  // echoed back on a Knative probe's answer
)

// drainer sits in front of a function's handlers. It answers the kubelet's and Knative's probes
// on any path, and once Drain is called fails them, so routers stop sending traffic here while
// the requests already on their way are still served.
type drainer struct {
	inner http.Handler
	quiet time.Duration // how long without a request before Drain returns

	draining atomic.Bool
	last     atomic.Int64 // when the latest request arrived while draining, UnixNano
}

func (d *drainer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The kubelet's probes win when a request looks like both, as they are answered without a hash.
	kube := strings.HasPrefix(r.Header.Get("User-Agent"), kubeProbePrefix)
	knative := !kube && r.Header.Get(probeHeader) == probeValue
	if kube || knative {
		if d.draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if knative {
			hash := r.Header.Get(probeHashHeader)
			if hash == "" {
				http.Error(w, "a probe request must carry a "+probeHashHeader+" header", http.StatusBadRequest)
				return
			}
			w.Header().Set(probeHashHeader, hash)
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	if d.draining.Load() {
		d.last.Store(time.Now().UnixNano())
	}
	d.inner.ServeHTTP(w, r)
}

// Drain fails the probes from now on and returns once no request has arrived for the quiet
// period: by then the routers have noticed and the server can shut down.
func (d *drainer) Drain() {
	d.last.Store(time.Now().UnixNano())
	d.draining.Store(true)
	for {
		wait := d.quiet - time.Since(time.Unix(0, d.last.Load()))
		if wait <= 0 {
			return
		}
		time.Sleep(wait)
	}
}
