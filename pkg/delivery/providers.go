package delivery

import (
	"errors"
	"log/slog"
	"net/url"

	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/pkg/account"
	"github.com/pulse-knative/pulse/pkg/channel"
	"github.com/pulse-knative/pulse/pkg/channel/email"
	"github.com/pulse-knative/pulse/pkg/channel/push"
	"github.com/pulse-knative/pulse/pkg/channel/sms"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/metrics/recorder"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// webhookAccount is the URL of the webhook channel's one account: webhooks go to the URL
// each notification names, signed with PULSE_WEBHOOK_SECRET, so there is nothing to
// configure per account.
var webhookAccount = &url.URL{Scheme: "webhook"}

// NewRegistry returns the registry of every provider the deliver functions know, keyed by
// channel and account URL scheme: webhook, smtp and smtps (email), twilio (sms), fcm (push).
func NewRegistry(cfg config.Deliver) *account.Registry {
	reg := account.NewRegistry()
	reg.Register(notification.Webhook, webhookAccount.Scheme, func(string, *url.URL) (channel.Provider, error) {
		return channel.NewWebhook(channel.WebhookConfig{Secret: cfg.WebhookSecret, Timeout: cfg.SendTimeout,
			AllowPrivate: cfg.AllowPrivateWebhooks})
	})
	smtp := func(_ string, u *url.URL) (channel.Provider, error) {
		c, err := email.ParseURL(u.String())
		if err != nil {
			return nil, err
		}
		return email.New(c)
	}
	reg.Register(notification.Email, "smtp", smtp)
	reg.Register(notification.Email, "smtps", smtp)
	reg.Register(notification.SMS, sms.Scheme, func(_ string, u *url.URL) (channel.Provider, error) {
		c, err := sms.ParseURL(u.String())
		if err != nil {
			return nil, err
		}
		return sms.New(c)
	})
	reg.Register(notification.Push, push.Scheme, func(_ string, u *url.URL) (channel.Provider, error) {
		c, err := push.ParseURL(u.String())
		if err != nil {
			return nil, err
		}
		return push.New(c)
	})
	return reg
}

// ProviderDeps are what the account framework needs beyond configuration.
type ProviderDeps struct {
	// Registry builds providers by URL scheme; nil means NewRegistry(cfg).
	Registry *account.Registry
	// Redis holds the shared rate limits; Keys names them.
	Redis redis.UniversalClient
	Keys  queue.Keys
	// Recorder publishes breaker states and throttle counts; nil publishes none.
	Recorder *recorder.Recorder
	// Pod names this process in breaker reports.
	Pod string
	// Logger logs breaker changes.
	Logger *slog.Logger
}

// Providers builds the provider of each channel cfg configures: webhook always, and for each
// channel with accounts a Failover over them. Close each provider that has a Close method
// when done (CloseProviders).
func Providers(cfg config.Deliver, deps ProviderDeps) (map[notification.Channel]channel.Provider, error) {
	reg := deps.Registry
	if reg == nil {
		reg = NewRegistry(cfg)
	}
	webhook, err := reg.Build(notification.Webhook, "webhook", webhookAccount)
	if err != nil {
		return nil, err
	}
	out := map[notification.Channel]channel.Provider{notification.Webhook: webhook}
	for name, accounts := range cfg.ChannelAccounts() {
		ch := notification.Channel(name)
		f, err := account.NewFailover(account.Config{Channel: ch, Accounts: accounts, Registry: reg,
			BreakerThreshold: cfg.BreakerThreshold, BreakerCooldown: cfg.BreakerCooldown,
			Redis: deps.Redis, Keys: deps.Keys, RateLimitWait: cfg.RateLimitWait,
			Recorder: deps.Recorder, Pod: deps.Pod, Logger: deps.Logger})
		if err != nil {
			_ = CloseProviders(out)
			return nil, err
		}
		out[ch] = f
	}
	return out, nil
}

// CloseProviders closes every provider that holds connections.
func CloseProviders(providers map[notification.Channel]channel.Provider) error {
	var errs []error
	for _, p := range providers {
		switch p := p.(type) {
		case interface{ Close() error }:
			errs = append(errs, p.Close())
		case interface{ CloseIdleConnections() }:
			p.CloseIdleConnections()
		}
	}
	return errors.Join(errs...)
}
