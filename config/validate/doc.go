// Package validate checks Pulse's Kubernetes manifests (config/*.yaml, config/datastores and
// the templates beside them) without a cluster: it decodes every document strictly into its
// Knative or Kubernetes type, runs Knative's own defaulting and validation, and holds the
// manifests to Pulse's rules: environment variables that match the envconfig structs in
// pkg/config, sinks that name existing Services, cluster-local internal Services, restricted
// security contexts, and timeouts and concurrency limits that fit together.
//
// It reads pkg/config's structs (config.All) through envconfig itself, in process, so the
// checks follow the structs as they change, with no second list of variables kept here.
//
// The package lives in a module of its own so that Knative's serving and eventing types and
// ko (pinned as a tool) stay out of the runtime's go.mod. It does not build images itself:
// its tests run the pinned ko against an in-process registry.
package validate
