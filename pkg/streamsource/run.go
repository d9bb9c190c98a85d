package streamsource

import (
	"context"
	"log/slog"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// Run builds the stream source cfg describes and feeds its stream to its sink until ctx is
// done.
func Run(ctx context.Context, cfg config.StreamSource, logger *slog.Logger) error {
	client, err := queue.Open(cfg.Redis)
	if err != nil {
		return err
	}
	defer client.Close()
	source, err := New(ConfigFrom(cfg), client, logger)
	if err != nil {
		return err
	}
	return source.Run(ctx)
}
