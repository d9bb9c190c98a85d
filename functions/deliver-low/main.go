// Command deliver-low delivers low-priority notifications: it receives dispatch events from
// the low stream's source, claims each notification, sends it and records the outcome. The
// logic lives in pkg/delivery; this file only wires.
package main

import (
	"github.com/pulse-knative/pulse/pkg/delivery"
	"github.com/pulse-knative/pulse/pkg/function"
	"github.com/pulse-knative/pulse/pkg/notification"
)

func main() {
	function.Main("deliver-low", delivery.RunPriority(notification.Low))
}
