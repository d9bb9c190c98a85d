// Command cron is the cron function: Knative PingSources call it with the name of a job
// (release, recover, expire, purge, trim) and it runs that job once. The logic lives in
// pkg/scheduler; this file only wires.
package main

import (
	"github.com/pulse-knative/pulse/pkg/function"
	"github.com/pulse-knative/pulse/pkg/scheduler"
)

func main() {
	function.Main("cron", scheduler.Run)
}
