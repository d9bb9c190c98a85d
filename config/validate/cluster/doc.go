// Package cluster applies manifests to a real Kubernetes API server and checks what Knative's
// controllers made of Pulse's: the part of make cluster-check (scripts/cluster-check.sh) that
// talks to the cluster.
//
// Apply sends documents as `kubectl apply --server-side` would, in file order, with every ko://
// image replaced by a fixed digest reference (FixedImage), since nothing here runs a registry
// or a kubelet. Check then waits for the objects Knative reconciles from Pulse's manifests and
// compares them with what the manifests declare: each Knative Service's Revision and
// PodAutoscaler (scale bounds, target, metric, containerConcurrency, timeout, image), each
// ContainerSource's SinkBinding and Deployment, each PingSource reconciled, and no warning event
// in the namespace but those about sinks without an address, which no cluster without a kubelet
// avoids.
//
// It does not start the control plane, build anything or judge the manifests on their own:
// scripts/cluster-check.sh runs the cluster, and package validate checks the manifests offline.
package cluster
