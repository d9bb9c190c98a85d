// Command deliver-high delivers high-priority notifications: it receives dispatch events from
// the high stream's source, claims each notification, sends it and records the outcome. The
// logic lives in pkg/delivery; this file only wires.
package main

import (
	"github.com/pulse-knative/pulse/pkg/delivery"
	"github.com/pulse-knative/pulse/pkg/function"
	"github.com/pulse-knative/pulse/pkg/notification"
)

func main() {
	function.Main("deliver-high", delivery.RunPriority(notification.High))
}
