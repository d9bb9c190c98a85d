package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/pkg/config"
)

// Open returns a Redis client for cfg. It does not wait for Redis to answer.
func Open(cfg config.Redis) (*redis.Client, error) {
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		// The URL may hold a password: do not echo it.
		return nil, fmt.Errorf("parse PULSE_REDIS_URL: %w", errors.New("invalid Redis URL"))
	}
	return redis.NewClient(opts), nil
}

// SetLogger sends go-redis's own log lines (failed dials, bad pooled connections, cluster
// notices) to logger at warn, as JSON like every other line of a function, instead of the
// plain-text "redis: ..." lines go-redis writes to stderr by default. go-redis keeps one
// logger per process, so main calls this once.
func SetLogger(logger *slog.Logger) {
	redis.SetLogger(redisLogger{logger})
}

// redisLogger is go-redis's logging interface over slog.
type redisLogger struct{ logger *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	l.logger.Log(ctx, slog.LevelWarn, msg, "component", "go-redis")
}
