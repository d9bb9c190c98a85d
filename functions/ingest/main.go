// Command ingest is the ingest function: CloudEvents in, notifications committed, status API
// out. The logic lives in pkg/ingest; this file only wires.
package main

import (
	"context"
	"fmt"
	"os"

	"knative.dev/pkg/signals"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/ingest"
	"github.com/pulse-knative/pulse/pkg/observe"
	"github.com/pulse-knative/pulse/pkg/queue"
)

func main() {
	if err := run(signals.NewContext()); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var cfg config.Ingest
	if err := config.Load(&cfg); err != nil {
		return err
	}
	logger := observe.NewLogger(os.Stdout, cfg.Level, "ingest")
	queue.SetLogger(logger)
	return ingest.Run(ctx, cfg, logger)
}
