package validate

import (
	"path"
	"strings"
)

// Module is the import path of the Pulse module that builds the images.
const Module = "github.com/pulse-knative/pulse"

// KoPrefix marks an image that ko builds from a Go import path.
const KoPrefix = "ko://"

// Function is one program Pulse deploys, tied to the pkg/config struct that configures it.
type Function struct {
	// ImportPath is the main package ko builds, as in the manifests' ko:// images.
	ImportPath string
	// Config names the struct in pkg/config that the program loads.
	Config string
	// Public is true for the one Knative Service that takes traffic from outside the cluster;
	// every other one must be cluster-local.
	Public bool
}

// Functions lists every program the manifests deploy. Its Config names are looked up among
// config.All when the checks run.
var Functions = []Function{
	{ImportPath: Module + "/functions/ingest", Config: "Ingest", Public: true},
	{ImportPath: Module + "/functions/deliver-high", Config: "Deliver"},
	{ImportPath: Module + "/functions/deliver-low", Config: "Deliver"},
	{ImportPath: Module + "/functions/cron", Config: "Cron"},
	{ImportPath: Module + "/functions/metrics", Config: "Metrics"},
	{ImportPath: Module + "/cmd/stream-source", Config: "StreamSource"},
}

// Name is the last element of the import path, which is also the binary's name in the image
// (/ko-app/<name>).
func (f Function) Name() string { return path.Base(f.ImportPath) }

// Dir is the package's directory relative to the repository root.
func (f Function) Dir() string { return strings.TrimPrefix(f.ImportPath, Module+"/") }

// FunctionOf returns the function an image builds, if it is a ko:// image of one.
func FunctionOf(image string) (Function, bool) {
	ip, ok := strings.CutPrefix(image, KoPrefix)
	if !ok {
		return Function{}, false
	}
	for _, f := range Functions {
		if f.ImportPath == ip {
			return f, true
		}
	}
	return Function{}, false
}

// SecretVars are the variables that carry credentials. They must come from a Secret through
// secretKeyRef, never from a ConfigMap or a literal value.
var SecretVars = map[string]bool{
	"PULSE_DATABASE_URL":   true,
	"PULSE_REDIS_URL":      true,
	"PULSE_INGEST_TOKENS":  true,
	"PULSE_WEBHOOK_SECRET": true,
	"PULSE_EMAIL_ACCOUNTS": true,
	"PULSE_SMS_ACCOUNTS":   true,
	"PULSE_PUSH_ACCOUNTS":  true,
}

// Injected are the variables the platform sets, by the kind of object that runs the
// container. A manifest must not set them (Knative refuses or overrides them), and a struct
// may require them without the manifest providing them.
var Injected = map[string][]string{
	"Service":         {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"},
	"ContainerSource": {"K_SINK", "K_CE_OVERRIDES"},
}

// Never-set variables, whatever runs the container.
var reservedVars = map[string]bool{
	"PORT": true, "K_SERVICE": true, "K_CONFIGURATION": true, "K_REVISION": true,
	"K_SINK": true, "K_CE_OVERRIDES": true,
}
