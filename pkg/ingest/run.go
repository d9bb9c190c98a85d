package ingest

import (
	"context"
	"log/slog"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// Run builds ingest from cfg and serves it until ctx is done, then drains: the HTTP server
// finishes its requests first, then the committer finishes its transactions.
func Run(ctx context.Context, cfg config.Ingest, logger *slog.Logger) error {
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
	committer := NewCommitter(st, queue.New(rdb, queue.NewKeys(cfg.Prefix), nil), logger, cfg.CommitBatch, cfg.Committers)
	committer.Start()
	defer committer.Stop()
	return ceserver.Serve(ctx, cfg.Server, NewHandler(cfg, st, committer, logger), logger)
}
