package main

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pulse-knative/pulse/internal/devping"
	"github.com/pulse-knative/pulse/pkg/ceserver"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/metrics"
	"github.com/pulse-knative/pulse/pkg/scheduler"
)

// startCronAndMetrics starts what `pulse dev` runs beside the core pipeline: cron, the PingSource
// schedules of the cluster's manifests posting to it, and the metrics function.
func startCronAndMetrics(ctx context.Context, g *errgroup.Group, dev config.Dev, logFor func(function string) *slog.Logger) error {
	var cronCfg config.Cron
	if err := config.Load(&cronCfg); err != nil {
		return err
	}
	cronCfg.Port = dev.CronPort
	pings, err := devping.LoadPingSources(dev.Manifests)
	if err != nil {
		return err
	}
	var metricsCfg config.Metrics
	if err := config.Load(&metricsCfg); err != nil {
		return err
	}
	metricsCfg.Port = dev.MetricsPort
	g.Go(func() error { return scheduler.Run(ctx, cronCfg, logFor("cron")) })
	g.Go(func() error { return metrics.Run(ctx, metricsCfg, logFor("metrics")) })
	g.Go(func() error {
		// No tick before cron listens: each would only log that it was not delivered.
		if err := waitReady(ctx, "http://127.0.0.1:"+strconv.Itoa(dev.CronPort)+ceserver.ReadyPath); err != nil {
			return err
		}
		client := &http.Client{Timeout: cronCfg.Budget + 10*time.Second}
		return devping.RunPings(ctx, pings, "http://127.0.0.1:"+strconv.Itoa(dev.CronPort)+"/", client, logFor("pingsource"))
	})
	return nil
}
