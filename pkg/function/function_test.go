package function_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/function"
	"github.com/pulse-knative/pulse/pkg/queue"
)

// testConfig is a process configuration as pkg/config's are: config.Log embedded, beside
// settings of its own.
type testConfig struct {
	config.Log
	Sink string `envconfig:"PULSE_FUNCTION_TEST_SINK" required:"true"`
}

type ctxKey struct{}

func TestRun(t *testing.T) {
	errRun := errors.New("sink unreachable")
	for name, tc := range map[string]struct {
		env     map[string]string
		runErr  error
		wantErr string
		wantRun bool
		wantLog []string
		noLog   []string
	}{
		"loads the configuration and logs as the function": {
			env:     map[string]string{"PULSE_FUNCTION_TEST_SINK": "http://sink", "PULSE_LOG_LEVEL": "debug"},
			wantRun: true,
			wantLog: []string{`"function":"fn"`, `"level":"DEBUG"`, `"msg":"running"`, `"sink":"http://sink"`},
		},
		"logs at the configured level": {
			env:     map[string]string{"PULSE_FUNCTION_TEST_SINK": "http://sink", "PULSE_LOG_LEVEL": "warn"},
			wantRun: true,
			noLog:   []string{`"msg":"running"`},
		},
		"returns what run returns": {
			env:     map[string]string{"PULSE_FUNCTION_TEST_SINK": "http://sink"},
			runErr:  errRun,
			wantErr: errRun.Error(),
			wantRun: true,
		},
		"refuses a configuration that does not load, before running": {
			env:     map[string]string{},
			wantErr: "load configuration: required key PULSE_FUNCTION_TEST_SINK missing value",
		},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out bytes.Buffer
			ctx := context.WithValue(t.Context(), ctxKey{}, "caller's")
			ran := false
			err := function.Run(ctx, "fn", &out, func(ctx context.Context, cfg testConfig, logger *slog.Logger) error {
				ran = true
				require.Equal(t, "caller's", ctx.Value(ctxKey{}), "run gets the caller's context")
				require.Equal(t, tc.env["PULSE_FUNCTION_TEST_SINK"], cfg.Sink)
				logger.Debug("running", "sink", cfg.Sink)
				return tc.runErr
			})
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.wantRun, ran)
			for _, s := range tc.wantLog {
				require.Contains(t, out.String(), s)
			}
			for _, s := range tc.noLog {
				require.NotContains(t, out.String(), s)
			}
		})
	}
}

func TestOpenDatastores(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	redisURL, prefix := pulsetest.Redis(t)
	ds, err := function.OpenDatastores(ctx, config.Database{URL: pulsetest.DatabaseURL(t), MaxConns: 2, Migrate: true},
		config.Redis{URL: redisURL, Prefix: prefix}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)

	// Migrated: a notification can be stored.
	n := testfactory.Notification(ctx, t, ds.Store, nil)
	got, err := ds.Store.Get(ctx, n.ID)
	require.NoError(t, err)
	require.Equal(t, n.ID, got.ID)
	require.NoError(t, ds.Redis.Ping(ctx).Err())
	require.Equal(t, queue.NewKeys(prefix), ds.Keys)

	ds.Close()
	require.Error(t, ds.Redis.Ping(ctx).Err(), "Redis still open after Close")
	require.Error(t, ds.Store.Ping(ctx), "PostgreSQL still open after Close")
}

func TestOpenDatastoresRefuses(t *testing.T) {
	t.Parallel()
	redisURL, _ := pulsetest.Redis(t)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	for name, tc := range map[string]struct {
		ctx     context.Context
		db      config.Database
		redis   config.Redis
		wantErr string
	}{
		"a malformed Redis URL, without echoing it": {
			ctx:     t.Context(),
			db:      config.Database{URL: pulsetest.DatabaseURL(t), MaxConns: 2},
			redis:   config.Redis{URL: "redis://:secret@host:port:port/0"},
			wantErr: "parse PULSE_REDIS_URL: invalid Redis URL",
		},
		"an unreachable database once ctx ends": {
			ctx:     cancelled,
			db:      config.Database{URL: "postgres://x@127.0.0.1:1/x", MaxConns: 2, Migrate: true},
			redis:   config.Redis{URL: redisURL},
			wantErr: "open database: context canceled",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := function.OpenDatastores(tc.ctx, tc.db, tc.redis, slog.New(slog.DiscardHandler))
			require.EqualError(t, err, tc.wantErr)
		})
	}
}
