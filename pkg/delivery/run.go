package delivery

import (
	"context"
	"log/slog"

	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/metrics/recorder"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// Providers builds the channel providers cfg configures.
func Providers(cfg config.Deliver) (map[notification.Channel]channel.Provider, error) {
	webhook, err := channel.NewWebhook(channel.WebhookConfig{Secret: cfg.WebhookSecret, Timeout: cfg.SendTimeout,
		AllowPrivate: cfg.AllowPrivateWebhooks})
	if err != nil {
		return nil, err
	}
	return map[notification.Channel]channel.Provider{notification.Webhook: webhook}, nil
}

// Run builds the deliver function of priority from cfg and serves it until ctx is done.
func Run(ctx context.Context, priority notification.Priority, cfg config.Deliver, logger *slog.Logger) error {
	logger = logger.With("priority", string(priority))
	providers, err := Providers(cfg)
	if err != nil {
		return err
	}
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
	d := NewDeliverer(DelivererConfig{Store: st, Providers: providers, Logger: logger, Retry: cfg.Retry,
		Lease: cfg.Lease, SendTimeout: cfg.SendTimeout, Recorder: recorder.New(rdb, queue.NewKeys(cfg.Prefix)),
		Batch: cfg.Batch, Committers: cfg.Committers})
	defer d.Close()
	return ceserver.Serve(ctx, cfg.Server, NewHandler(d, logger), logger)
}
