package main

import (
	"context"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/pulse-knative/pulse/pkg/config"
)

// devExtras starts what `pulse dev` runs beside the core pipeline: cron with its PingSource
// schedules, and the metrics function.
func devExtras(ctx context.Context, g *errgroup.Group, cfg config.Dev, logFor func(function string) *slog.Logger) error {
	return nil
}
