// Command riverworker is the bench's River baseline as a process of its own: see
// bench/riverpeer. The bench starts it for the drain-river scenarios with BENCH_RIVER_*
// settings (riverpeer.Config) and stops it with SIGTERM.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/kelseyhightower/envconfig"

	"github.com/pulse-knative/pulse/bench/riverpeer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var cfg riverpeer.Config
	if err := envconfig.Process("BENCH_RIVER", &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "riverworker:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := riverpeer.Run(ctx, cfg, logger); err != nil {
		fmt.Fprintln(os.Stderr, "riverworker:", err)
		os.Exit(1)
	}
}
