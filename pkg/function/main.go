package function

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/observe"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// Config is what Main needs of a process's configuration: the level to log at. Every
// configuration in pkg/config that embeds config.Log has it.
type Config interface {
	LogLevel() string
}

// RunFunc runs a process with its configuration and logger until ctx is done.
type RunFunc[C Config] func(ctx context.Context, cfg C, logger *slog.Logger) error

// Main runs the process named name until SIGTERM or SIGINT (see Run). When Run fails it
// prints the error after name on stderr and exits 1; otherwise it returns, and the process
// exits 0.
func Main[C Config](name string, run RunFunc[C]) {
	if err := Run(SignalContext(), name, os.Stdout, run); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Run loads the configuration C from the environment, builds the JSON logger tagged with name
// that writes to w, sends go-redis's logs through it too, and calls run with them.
func Run[C Config](ctx context.Context, name string, w io.Writer, run RunFunc[C]) error {
	var cfg C
	if err := config.Load(&cfg); err != nil {
		return err
	}
	logger := observe.NewLogger(w, cfg.LogLevel(), name)
	queue.SetLogger(logger)
	return run(ctx, cfg, logger)
}
