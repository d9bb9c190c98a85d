// Command cron is the cron function: Knative PingSources call it with the name of a job
// (release, recover, expire, purge, trim) and it runs that job once. The logic lives in
// pkg/scheduler; this file only wires.
package main

import (
	"context"
	"fmt"
	"os"

	"knative.dev/pkg/signals"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/observe"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/scheduler"
)

func main() {
	if err := run(signals.NewContext()); err != nil {
		fmt.Fprintln(os.Stderr, "cron:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var cfg config.Cron
	if err := config.Load(&cfg); err != nil {
		return err
	}
	logger := observe.NewLogger(os.Stdout, cfg.Level, "cron")
	queue.SetLogger(logger)
	return scheduler.Run(ctx, cfg, logger)
}
