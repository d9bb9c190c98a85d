package scheduler

import (
	"context"
	"log/slog"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/function"
)

// Run builds the cron function from cfg and serves it until ctx is done.
func Run(ctx context.Context, cfg config.Cron, logger *slog.Logger) error {
	ds, err := function.OpenDatastores(ctx, cfg.Database, cfg.Redis, logger)
	if err != nil {
		return err
	}
	defer ds.Close()
	s := New(Config{Store: ds.Store, Redis: ds.Redis, Keys: ds.Keys, BatchSize: cfg.BatchSize,
		Budget: cfg.Budget, RecoverQueuedAfter: cfg.RecoverQueuedAfter, Retention: cfg.Retention,
		DeadLetterRetention: cfg.DeadLetterRetention, DeadLetterMaxLen: cfg.DeadLetterMaxLen})
	return ceserver.Serve(ctx, cfg.Server, NewHandler(s, logger), logger)
}
