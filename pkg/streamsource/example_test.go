package streamsource_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/streamsource"
)

// A stream source is configured from the environment, like cmd/stream-source does, and runs
// until its context is cancelled.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var cfg config.StreamSource
	if err := config.Load(&cfg); err != nil {
		slog.Error("load configuration", "error", err)
		return
	}
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		// The error may quote the URL and its password: do not log it.
		slog.Error("PULSE_REDIS_URL is not a Redis URL")
		return
	}
	client := redis.NewClient(opts)
	defer client.Close()

	logger := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	source, err := streamsource.New(streamsource.ConfigFrom(cfg), client, logger)
	if err != nil {
		logger.Error("create stream source", "error", err)
		return
	}
	_ = source.Run(ctx)
}
