package scheduler

import (
	"context"
	"log/slog"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// Run builds the cron function from cfg and serves it until ctx is done.
func Run(ctx context.Context, cfg config.Cron, logger *slog.Logger) error {
	st, err := store.OpenReady(ctx, cfg.Database, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	rdb, err := queue.Open(cfg.Redis)
	if err != nil {
		return err
	}
	defer rdb.Close()
	s := New(Config{Store: st, Redis: rdb, Keys: queue.NewKeys(cfg.Prefix), BatchSize: cfg.BatchSize,
		Budget: cfg.Budget, RecoverQueuedAfter: cfg.RecoverQueuedAfter, Retention: cfg.Retention,
		DeadLetterRetention: cfg.DeadLetterRetention, DeadLetterMaxLen: cfg.DeadLetterMaxLen})
	return ceserver.Serve(ctx, cfg.Server, NewHandler(s, logger), logger)
}
