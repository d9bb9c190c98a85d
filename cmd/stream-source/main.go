// Command stream-source feeds one priority's Redis stream to its sink as CloudEvents, one
// per entry, at least once. It runs as a Knative ContainerSource, which sets K_SINK; the
// rest of its configuration is config.StreamSource. The logic lives in pkg/streamsource.
package main

import (
	"github.com/pulse-knative/pulse/pkg/function"
	"github.com/pulse-knative/pulse/pkg/streamsource"
)

func main() {
	function.Main("stream-source", streamsource.Run)
}
