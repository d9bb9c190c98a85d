package delivery

import (
	"context"
	"log/slog"
	"os"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/metrics/recorder"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// Run builds the deliver function of priority from cfg and serves it until ctx is done.
func Run(ctx context.Context, priority notification.Priority, cfg config.Deliver, logger *slog.Logger) error {
	logger = logger.With("priority", string(priority))
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
	keys := queue.NewKeys(cfg.Prefix)
	rec := recorder.New(rdb, keys)
	pod, _ := os.Hostname() // Knative's pod name; only labels breaker reports
	providers, err := Providers(cfg, ProviderDeps{Redis: rdb, Keys: keys, Recorder: rec,
		Pod: pod + "-" + string(priority), Logger: logger})
	if err != nil {
		return err
	}
	defer CloseProviders(providers)
	d := NewDeliverer(DelivererConfig{Store: st, Providers: providers, Logger: logger, Retry: cfg.Retry,
		Lease: cfg.Lease, SendTimeout: cfg.SendTimeout, Recorder: rec,
		Batch: cfg.Batch, Committers: cfg.Committers})
	defer d.Close()
	return ceserver.Serve(ctx, cfg.Server, NewHandler(d, logger), logger)
}

// RunPriority returns Run for one priority, in the shape function.Main takes: the deliver
// functions differ only by the priority they are built with.
func RunPriority(priority notification.Priority) func(context.Context, config.Deliver, *slog.Logger) error {
	return func(ctx context.Context, cfg config.Deliver, logger *slog.Logger) error {
		return Run(ctx, priority, cfg, logger)
	}
}
