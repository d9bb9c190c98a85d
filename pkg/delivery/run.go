package delivery

import (
	"context"
	"log/slog"
	"os"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/function"
	"github.com/pulse-knative/pulse/pkg/metrics/recorder"
	"github.com/pulse-knative/pulse/pkg/notification"
)

// Run builds the deliver function of priority from cfg and serves it until ctx is done.
func Run(ctx context.Context, priority notification.Priority, cfg config.Deliver, logger *slog.Logger) error {
	logger = logger.With("priority", string(priority))
	ds, err := function.OpenDatastores(ctx, cfg.Database, cfg.Redis, logger)
	if err != nil {
		return err
	}
	defer ds.Close()
	rec := recorder.New(ds.Redis, ds.Keys)
	pod, _ := os.Hostname() // Knative's pod name; only labels breaker reports
	providers, err := Providers(cfg, ProviderDeps{Redis: ds.Redis, Keys: ds.Keys, Recorder: rec,
		Pod: pod + "-" + string(priority), Logger: logger})
	if err != nil {
		return err
	}
	defer CloseProviders(providers)
	d := NewDeliverer(DelivererConfig{Store: ds.Store, Providers: providers, Logger: logger, Retry: cfg.Retry,
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
