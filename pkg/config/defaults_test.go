package config_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/pkg/config"
)

// TestDefaults loads each configuration with nothing but the datastores' URLs set and checks
// every value it then has. It sets environment variables, so it cannot run in parallel.
func TestDefaults(t *testing.T) {
	const databaseURL, redisURL = "postgres://pulse@127.0.0.1:5432/pulse", "redis://127.0.0.1:6379/0"
	t.Setenv("PULSE_DATABASE_URL", databaseURL)
	t.Setenv("PULSE_REDIS_URL", redisURL)
	database := config.Database{URL: databaseURL, MaxConns: 8, Migrate: true}
	redis := config.Redis{URL: redisURL, Prefix: "pulse"}
	server := config.Server{Port: 8080, ReadTimeout: 30 * time.Second, WriteTimeout: time.Minute, ShutdownTimeout: 30 * time.Second}
	log := config.Log{Level: "info"}
	for name, tc := range map[string]struct {
		got, want any
	}{
		"cron": {got: &config.Cron{}, want: &config.Cron{Database: database, Redis: redis, Server: server, Log: log,
			BatchSize: 500, Budget: 20 * time.Second, RecoverQueuedAfter: 5 * time.Minute, Retention: 30 * 24 * time.Hour,
			DeadLetterRetention: 14 * 24 * time.Hour, DeadLetterMaxLen: 100_000}},
		"metrics": {got: &config.Metrics{}, want: &config.Metrics{Database: database, Redis: redis, Server: server, Log: log,
			ScrapeTimeout: 5 * time.Second, FailureWindow: 15 * time.Minute, PastDueAfter: time.Minute,
			RollupInterval: 10 * time.Second, RollupBatch: 10_000, Group: "pulse-deliver"}},
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, config.Load(tc.got))
			if diff := cmp.Diff(tc.want, tc.got); diff != "" {
				t.Errorf("defaults (-want +got):\n%s", diff)
			}
		})
	}
}
