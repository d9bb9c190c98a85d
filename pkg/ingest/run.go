package ingest

import (
	"context"
	"log/slog"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/function"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// Run builds ingest from cfg and serves it until ctx is done, then drains: the HTTP server
// finishes its requests first, then the committer finishes its transactions.
func Run(ctx context.Context, cfg config.Ingest, logger *slog.Logger) error {
	ds, err := function.OpenDatastores(ctx, cfg.Database, cfg.Redis, logger)
	if err != nil {
		return err
	}
	defer ds.Close()
	committer := NewCommitter(ds.Store, queue.New(ds.Redis, ds.Keys, nil), logger, cfg.CommitBatch, cfg.Committers)
	committer.Start()
	defer committer.Stop()
	return ceserver.Serve(ctx, cfg.Server, NewHandler(cfg, ds.Store, committer, logger), logger)
}
