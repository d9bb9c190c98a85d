package ceserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/pulse-knative/pulse/pkg/config"
)

// Health paths every function serves. Knative's queue-proxy and the kubelet probe them.
const (
	LivePath  = "/healthz"
	ReadyPath = "/readyz"
)

// Serve serves h on cfg.Port until ctx is done, then drains: readiness turns to failing so no
// new traffic is routed here, in-flight requests get cfg.ShutdownTimeout to finish.
func Serve(ctx context.Context, cfg config.Server, h http.Handler, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w", cfg.Port, err)
	}
	return ServeListener(ctx, ln, cfg, h, logger)
}

// ServeListener is Serve on an existing listener.
func ServeListener(ctx context.Context, ln net.Listener, cfg config.Server, h http.Handler, logger *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc(LivePath, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("/", h)
	// The drainer answers kubelet probes on any path, failing them once draining starts.
	drainer := &drainer{inner: mux, quiet: quietPeriod(cfg.ShutdownTimeout)}
	mux.HandleFunc(ReadyPath, func(w http.ResponseWriter, _ *http.Request) {
		if drainer.draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := &http.Server{
		Handler:           drainer,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if cfg.PprofAddr != "" {
		servePprof(ctx, cfg.PprofAddr, logger)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("serving", "address", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "budget", cfg.ShutdownTimeout.String())
	drainer.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// quietPeriod is how long a draining server keeps answering while routers notice it is going;
// Knative's default is 45 s, bounded here by the shutdown budget.
func quietPeriod(budget time.Duration) time.Duration {
	return min(budget/3, 5*time.Second)
}

// servePprof serves Go's profiles on addr until ctx is done.
func servePprof(ctx context.Context, addr string, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("pprof server stopped", "error", err)
		}
	}()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	logger.Info("serving pprof", "address", addr)
}
