// Command metrics is the metrics function: it serves Pulse's Prometheus metrics, computed at
// scrape time from Redis and PostgreSQL. The logic lives in pkg/metrics; this file only wires.
package main

import (
	"context"
	"fmt"
	"os"

	"knative.dev/pkg/signals"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/metrics"
	"github.com/pulse-knative/pulse/pkg/observe"
	"github.com/pulse-knative/pulse/pkg/queue"
)

func main() {
	if err := run(signals.NewContext()); err != nil {
		fmt.Fprintln(os.Stderr, "metrics:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var cfg config.Metrics
	if err := config.Load(&cfg); err != nil {
		return err
	}
	logger := observe.NewLogger(os.Stdout, cfg.Level, "metrics")
	queue.SetLogger(logger)
	return metrics.Run(ctx, cfg, logger)
}
