package queue

import (
	"errors"
	"fmt"

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
