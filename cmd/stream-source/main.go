// Command stream-source feeds one priority's Redis stream to its sink as CloudEvents, one
// per entry, at least once. It runs as a Knative ContainerSource, which sets K_SINK; the
// rest of its configuration is config.StreamSource. The logic lives in pkg/streamsource.
package main

import (
	"context"
	"fmt"
	"os"

	"knative.dev/pkg/signals"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/observe"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/streamsource"
)

func main() {
	ctx := signals.NewContext()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "stream-source:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var cfg config.StreamSource
	if err := config.Load(&cfg); err != nil {
		return err
	}
	logger := observe.NewLogger(os.Stdout, cfg.Level, "stream-source")
	queue.SetLogger(logger)
	client, err := queue.Open(cfg.Redis)
	if err != nil {
		return err
	}
	defer client.Close()
	source, err := streamsource.New(streamsource.ConfigFrom(cfg), client, logger)
	if err != nil {
		return err
	}
	return source.Run(ctx)
}
