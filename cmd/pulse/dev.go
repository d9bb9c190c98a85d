package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pulse-knative/pulse/internal/capture"
	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/delivery"
	"github.com/pulse-knative/pulse/pkg/ingest"
	"github.com/pulse-knative/pulse/pkg/notification"
	"github.com/pulse-knative/pulse/pkg/observe"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/streamsource"
)

// devEmailFrom is the sender of the email `pulse dev` delivers to its capture SMTP server.
const devEmailFrom = "Pulse dev <pulse@pulse.localhost>"

// dev runs the whole pipeline in one process, each function configured exactly as in a
// cluster (from its PULSE_ variables) except for ports and sinks.
func dev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pulse dev\n\nRuns every function locally; configure with PULSE_ variables (see README).")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := config.SetDefaults(config.DevDefaults); err != nil {
		return err
	}
	var devCfg config.Dev
	if err := config.Load(&devCfg); err != nil {
		return err
	}
	// The deliver functions send email to the capture SMTP server, unencrypted: it is on
	// this machine and needs no password.
	if err := config.SetDefaults(map[string]string{
		"PULSE_EMAIL_ACCOUNTS": fmt.Sprintf("capture=smtp://127.0.0.1:%d?from=%s&tls=none", devCfg.SMTPPort, url.QueryEscape(devEmailFrom)),
	}); err != nil {
		return err
	}
	var ingestCfg config.Ingest
	var deliverCfg config.Deliver
	for _, c := range []any{&ingestCfg, &deliverCfg} {
		if err := config.Load(c); err != nil {
			return err
		}
	}
	if _, set := os.LookupEnv("PULSE_CHANNELS"); !set {
		// One process, one environment: ingest accepts what deliver has accounts for.
		ingestCfg.Channels = deliverCfg.Channels()
	}
	logFor := func(function string) *slog.Logger { return observe.NewLogger(os.Stderr, ingestCfg.Level, function) }

	g, ctx := errgroup.WithContext(ctx)
	receiver := capture.NewWebhooks(deliverCfg.WebhookSecret, os.Stdout)
	g.Go(func() error { return serve(ctx, devCfg.WebhookPort, receiver) })
	mailbox := capture.NewSMTP(capture.SMTPConfig{Out: os.Stdout})
	g.Go(func() error { return mailbox.ListenAndServe(ctx, "127.0.0.1:"+strconv.Itoa(devCfg.SMTPPort)) })

	ingestCfg.Port = devCfg.IngestPort
	g.Go(func() error { return ingest.Run(ctx, ingestCfg, logFor("ingest")) })
	for _, d := range []struct {
		priority notification.Priority
		port     int
	}{{notification.High, devCfg.DeliverHighPort}, {notification.Low, devCfg.DeliverLowPort}} {
		cfg := deliverCfg
		cfg.Port = d.port
		g.Go(func() error { return delivery.Run(ctx, d.priority, cfg, logFor("deliver-"+string(d.priority))) })

		g.Go(func() error {
			// As Knative does, send nothing before the deliver function is ready: an entry whose
			// send fails stays pending until the stream source reclaims it, minutes later.
			deliver := "http://127.0.0.1:" + strconv.Itoa(d.port)
			if err := waitReady(ctx, deliver+ceserver.ReadyPath); err != nil {
				return err
			}
			return runStreamSource(ctx, string(d.priority), deliver+"/", logFor("stream-source-"+string(d.priority)))
		})
	}
	if err := startCronAndMetrics(ctx, g, devCfg, logFor); err != nil {
		return err
	}

	fmt.Printf(`Pulse is running.
  ingest:           http://127.0.0.1:%d/   (POST CloudEvents; GET /v1/notifications/{id})
  webhook receiver: http://127.0.0.1:%d/   (send webhooks here to see them arrive)
  SMTP capture:     127.0.0.1:%d          (every email the deliver functions send arrives here)
  metrics:          http://127.0.0.1:%d/metrics
Try:
  go run ./cmd/pulse send --to http://127.0.0.1:%d/hook --data '{"hello":"world"}'
  go run ./cmd/pulse send --channel email --to someone@example.com --subject Hello --text 'Hi there'
Stop with Ctrl-C.
`, devCfg.IngestPort, devCfg.WebhookPort, devCfg.SMTPPort, devCfg.MetricsPort, devCfg.WebhookPort)
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

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
	client, err := queue.Open(cfg.Redis)
	if err != nil {
		return err
	}
	defer client.Close()
	src, err := streamsource.New(streamsource.ConfigFrom(cfg), client, logger)
	if err != nil {
		return err
	}
	return src.Run(ctx)
}

// serve serves h on port until ctx is done.
func serve(ctx context.Context, port int, h http.Handler) error {
	srv := &http.Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Handler: h}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on port %d: %w", port, err)
	case <-ctx.Done():
		return srv.Shutdown(context.WithoutCancel(ctx))
	}
}
