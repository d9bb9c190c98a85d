package metrics

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// Run builds the metrics function from cfg and serves it until ctx is done.
//
// It serves at once, even while PostgreSQL is unreachable or its schema is not migrated yet:
// the Redis collectors still report, and the others report their failure, which is what an
// operator needs to see then. The migrations (when cfg.Migrate is set) are applied meanwhile,
// retried with backoff until PostgreSQL answers; then a Roller keeps the status counts rolled
// up until ctx is done.
func Run(ctx context.Context, cfg config.Metrics, logger *slog.Logger) error {
	st, err := store.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	rdb, err := queue.Open(cfg.Redis)
	if err != nil {
		return err
	}
	defer rdb.Close()
	// A collector that runs out of time must stop waiting for Redis, not only for PostgreSQL.
	rdb.Options().ContextTimeoutEnabled = true

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	roller := NewRoller(RollerConfig{Store: st, Batch: cfg.RollupBatch, Interval: cfg.RollupInterval,
		FailureWindow: cfg.FailureWindow, Logger: logger})
	wg.Go(func() {
		if cfg.Migrate {
			migrate(ctx, st, logger)
		}
		roller.Run(ctx)
	})

	exporter := NewExporter(Config{
		Store:         st,
		Redis:         rdb,
		Keys:          queue.NewKeys(cfg.Prefix),
		Group:         cfg.Group,
		ScrapeTimeout: cfg.ScrapeTimeout,
		FailureWindow: cfg.FailureWindow,
		PastDueAfter:  cfg.PastDueAfter,
		Logger:        logger,
	})
	return ceserver.Serve(ctx, cfg.Server, Handler(exporter), logger)
}

// migrate applies the store's migrations, retrying with backoff while PostgreSQL is
// unavailable, until they are applied or ctx is done.
func migrate(ctx context.Context, st *store.Store, logger *slog.Logger) {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := st.Migrate(ctx)
		if err == nil {
			return
		}
		if !errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil {
			logger.Error("migrate database", "error", err.Error())
			return
		}
		logger.Warn("database not ready, retrying migrations", "error", err.Error(), "wait", wait.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
