// Command ingest is the ingest function: CloudEvents in, notifications committed, status API
// out. The logic lives in pkg/ingest; this file only wires.
package main

import (
	"github.com/pulse-knative/pulse/pkg/function"
	"github.com/pulse-knative/pulse/pkg/ingest"
)

func main() {
	function.Main("ingest", ingest.Run)
}
