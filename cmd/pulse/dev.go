package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/pulse-knative/pulse/internal/capture"
	"github.com/pulse-knative/pulse/internal/devping"
	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/delivery"
	"github.com/pulse-knative/pulse/pkg/ingest"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/observe"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
	"github.com/pulse-knative/pulse/pkg/streamsource"
)

var devCommand = command{
	name: "dev",
	about: `Runs the whole pipeline in one process against local PostgreSQL and Redis: ingest,
deliver-high, deliver-low, both stream sources, cron with the PingSource schedules of config/,
metrics, and capture receivers (webhook, SMTP, SMS, push) that print what they get. Each function is configured
exactly as in a cluster, from its PULSE_ variables, except for ports and sinks.

It checks the settings and the datastores first and stops with one line naming what is wrong;
it says "Pulse is running." once every function answers ready. Ctrl-C stops it.`,
	env:      []any{&config.Dev{}, &config.Ingest{}, &config.Deliver{}, &config.Cron{}, &config.Metrics{}, &config.StreamSource{}},
	defaults: localDefaults(),
	// Set by pulse dev itself, per function.
	set: []string{"PORT", "K_SINK", "PULSE_PRIORITY", "PULSE_CONSUMER"},
}

// preflightTimeout bounds the datastore checks before anything starts: long enough for a
// datastore that is up, short enough that a newcomer is not left waiting.
const preflightTimeout = 5 * time.Second

// dev runs the whole pipeline in one process, each function configured exactly as in a
// cluster (from its PULSE_ variables) except for ports and sinks.
func dev(ctx context.Context, args []string) error {
	if err := devCommand.parseNoArgs(args); err != nil {
		return err
	}
	if err := config.SetDefaults(config.DevDefaults); err != nil {
		return err
	}
	var devCfg config.Dev
	if err := config.Load(&devCfg); err != nil {
		return err
	}
	// Before the deliver functions' configuration is read: it sets their email, SMS and push
	// accounts.
	captures, err := newDevCaptures(devCfg)
	if err != nil {
		return err
	}
	defer captures.close()
	var (
		ingestCfg  config.Ingest
		deliverCfg config.Deliver
	)
	// Cron's and metrics' too, only to refuse a malformed setting before anything starts.
	for _, c := range []any{&ingestCfg, &deliverCfg, &config.Cron{}, &config.Metrics{}} {
		if err := config.Load(c); err != nil {
			return err
		}
	}
	if _, set := os.LookupEnv("PULSE_CHANNELS"); !set {
		// One process, one environment: ingest accepts what deliver has accounts for.
		ingestCfg.Channels = deliverCfg.Channels()
	}
	// Settings the functions would only refuse once started, each after waiting for the
	// database: refuse them now, before anything runs.
	// A client that never dials: the check builds each provider without sending.
	preflightRedis := redis.NewClient(&redis.Options{})
	providers, err := delivery.Providers(deliverCfg, delivery.ProviderDeps{Redis: preflightRedis})
	preflightRedis.Close()
	if err != nil {
		return err
	}
	_ = delivery.CloseProviders(providers)
	if _, err := devping.LoadPingSources(devCfg.Manifests); err != nil {
		return fmt.Errorf("PULSE_DEV_MANIFESTS=%s: %w", devCfg.Manifests, err)
	}
	// go-redis logs each failed dial itself: the check's one line says it all.
	queue.SetLogger(slog.New(slog.DiscardHandler))
	if err := checkDatastores(ctx, ingestCfg.Database, ingestCfg.Redis); err != nil {
		return err
	}

	logFor := func(function string) *slog.Logger { return observe.NewLogger(os.Stderr, ingestCfg.Level, function) }
	queue.SetLogger(logFor("pulse-dev"))

	g, gctx := errgroup.WithContext(ctx)
	receiver := capture.NewWebhooks(deliverCfg.WebhookSecret, os.Stdout)
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(devCfg.WebhookPort))
	if err != nil {
		return fmt.Errorf("webhook receiver (PULSE_DEV_WEBHOOK_PORT): %w", err)
	}
	g.Go(func() error { return serveListener(gctx, ln, receiver) })
	captures.serve(gctx, g)

	ingestCfg.Port = devCfg.IngestPort
	g.Go(func() error { return ingest.Run(gctx, ingestCfg, logFor("ingest")) })
	ready := []string{localURL(devCfg.IngestPort)}
	for _, d := range []struct {
		priority notification.Priority
		port     int
	}{{notification.High, devCfg.DeliverHighPort}, {notification.Low, devCfg.DeliverLowPort}} {
		cfg := deliverCfg
		cfg.Port = d.port
		g.Go(func() error { return delivery.Run(gctx, d.priority, cfg, logFor("deliver-"+string(d.priority))) })
		ready = append(ready, localURL(d.port))

		g.Go(func() error {
			// As Knative does, send nothing before the deliver function is ready: an entry whose
			// send fails stays pending until the stream source reclaims it, minutes later.
			if err := waitReady(gctx, localURL(d.port)+ceserver.ReadyPath); err != nil {
				return err
			}
			return runStreamSource(gctx, string(d.priority), localURL(d.port)+"/", logFor("stream-source-"+string(d.priority)))
		})
	}
	if err := startCronAndMetrics(gctx, g, devCfg, logFor); err != nil {
		return err
	}
	ready = append(ready, localURL(devCfg.CronPort), localURL(devCfg.MetricsPort))

	for _, base := range ready {
		if err := waitReady(gctx, base+ceserver.ReadyPath); err != nil {
			// A function failed to start (its error is the group's), or Ctrl-C.
			return stopped(ctx, g.Wait())
		}
	}
	fmt.Printf(`Pulse is running.
  ingest:           http://127.0.0.1:%d/   (POST CloudEvents; GET /v1/notifications/{id})
  webhook receiver: http://127.0.0.1:%d/   (send webhooks here to see them arrive)
  SMTP capture:     127.0.0.1:%d          (every email the deliver functions send arrives here)
  SMS capture:      http://127.0.0.1:%d/   (Twilio-shaped; PULSE_SMS_ACCOUNTS points here)
  push capture:     http://127.0.0.1:%d/   (FCM-shaped, with its token endpoint; PULSE_PUSH_ACCOUNTS points here)
  metrics:          http://127.0.0.1:%d/metrics
  status page:      http://127.0.0.1:%d/   (queues, counts, latest failures; open it in a browser)
Try:
  go run ./cmd/pulse send --to http://127.0.0.1:%d/hook --data '{"hello":"world"}'
  go run ./cmd/pulse send --channel email --to someone@example.com --subject Hello --text 'Hi there'
  go run ./cmd/pulse send --channel sms --to +15551234567 --text 'Your code is 1234'
  go run ./cmd/pulse send --channel push --to device-token-1 --subject Hello --text 'From Pulse' --data '{"data":{"order":"42"}}'
  go run ./cmd/pulse inspect
Stop with Ctrl-C.
`, devCfg.IngestPort, devCfg.WebhookPort, devCfg.SMTPPort, devCfg.SMSPort, devCfg.PushPort, devCfg.MetricsPort, devCfg.MetricsPort, devCfg.WebhookPort)
	return stopped(ctx, g.Wait())
}

// stopped is dev's result once its functions have returned with err: nothing when ctx, the
// process's signal context, ended (Ctrl-C is how dev is meant to stop), else err.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// checkDatastores checks that PostgreSQL and Redis answer, so that a datastore that is down
// stops dev at once with one line saying which, instead of functions that wait for it.
// Neither error quotes the URL, which may hold a password.
func checkDatastores(ctx context.Context, db config.Database, rcfg config.Redis) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	st, err := store.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Ping(ctx); err != nil {
		return fmt.Errorf("PostgreSQL (PULSE_DATABASE_URL) does not answer: %w (start it with make datastores)", err)
	}
	rdb, err := queue.Open(rcfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("Redis (PULSE_REDIS_URL) does not answer: %w (start it with make datastores)", err)
	}
	return nil
}

// localURL is the base URL of a local port.
func localURL(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// waitReady polls url until it answers 200, or ctx ends.
func waitReady(ctx context.Context, url string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func runStreamSource(ctx context.Context, priority, sink string, logger *slog.Logger) error {
	var cfg config.StreamSource
	if err := config.SetDefaults(map[string]string{"PULSE_PRIORITY": priority, "K_SINK": sink}); err != nil {
		return err
	}
	if err := config.Load(&cfg); err != nil {
		return err
	}
	// Both sources share the process's environment: set what differs between them here.
	cfg.Priority, cfg.Sink, cfg.Consumer = priority, sink, "pulse-dev-"+priority
	return streamsource.Run(ctx, cfg, logger)
}

// serve serves h on a local port until ctx is done.
func serve(ctx context.Context, port int, h http.Handler) error {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return fmt.Errorf("serve on port %d: %w", port, err)
	}
	return serveListener(ctx, ln, h)
}

// serveListener serves h on ln until ctx is done.
func serveListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		return srv.Shutdown(context.WithoutCancel(ctx))
	}
}
