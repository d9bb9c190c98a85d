// Command stream-source feeds one priority's Redis stream to its sink as CloudEvents, one
// per entry, at least once. It runs as a Knative ContainerSource, which sets K_SINK; the
// rest of its configuration is config.StreamSource. The logic lives in pkg/streamsource.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/redis/go-redis/v9"
	"knative.dev/pkg/signals"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/observe"
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
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		// A *url.Error quotes the URL, password included: keep only its cause.
		if uerr := (*url.Error)(nil); errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("parse PULSE_REDIS_URL: %w", err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	source, err := streamsource.New(cfg, client, logger)
	if err != nil {
		return err
	}
	return source.Run(ctx)
}
