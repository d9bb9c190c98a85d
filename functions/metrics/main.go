// Command metrics is the metrics function: it serves Pulse's Prometheus metrics, computed at
// scrape time from Redis and PostgreSQL. The logic lives in pkg/metrics; this file only wires.
package main

import (
	"github.com/pulse-knative/pulse/pkg/function"
	"github.com/pulse-knative/pulse/pkg/metrics"
)

func main() {
	function.Main("metrics", metrics.Run)
}
