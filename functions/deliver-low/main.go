// Command deliver-low delivers low-priority notifications: it receives dispatch events from
// the low stream's source, claims each notification, sends it and records the outcome. The
// logic lives in pkg/delivery; this file only wires.
package main

import (
	"context"
	"fmt"
	"os"

	"knative.dev/pkg/signals"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/delivery"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/observe"
	"github.com/pulse-knative/pulse/pkg/queue"
)

func main() {
	if err := run(signals.NewContext()); err != nil {
		fmt.Fprintln(os.Stderr, "deliver-low:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var cfg config.Deliver
	if err := config.Load(&cfg); err != nil {
		return err
	}
	logger := observe.NewLogger(os.Stdout, cfg.Level, "deliver-low")
	queue.SetLogger(logger)
	return delivery.Run(ctx, notification.Low, cfg, logger)
}
