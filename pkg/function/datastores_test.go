package function

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/internal/testfactory"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/queue"
)

func TestOpenDatastores(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	redisURL, prefix := pulsetest.Redis(t)
	ds, err := OpenDatastores(ctx, config.Database{URL: pulsetest.DatabaseURL(t), MaxConns: 2, Migrate: true},
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
			_, err := OpenDatastores(tc.ctx, tc.db, tc.redis, slog.New(slog.DiscardHandler))
			require.EqualError(t, err, tc.wantErr)
		})
	}
}
