package testfactory

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/pulse-knative/pulse/internal/pulsetest"
	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/ingest"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// IngestOpts are the options of Ingest; the zero value is fine.
type IngestOpts struct {
	// DatabaseURL is the database ingest stores into; pulsetest.DatabaseURL when empty.
	DatabaseURL string
	// NoMigrate leaves the database as it is, for a DatabaseURL nothing answers at.
	NoMigrate bool
	// Committers bounds the committer's transactions in flight; 2 when zero.
	Committers int
}

// IngestServer is ingest serving over HTTP on real datastores.
type IngestServer struct {
	// URL is the server's base URL.
	URL string
	// Store is the store ingest writes to.
	Store *store.Store
	// Redis and Keys are the client and key prefix of the streams ingest enqueues on.
	Redis *redis.Client
	Keys  queue.Keys
}

// Ingest serves ingest with cfg on a test HTTP server, storing into a PostgreSQL store and a
// Redis key prefix of the test's own, with commits of up to 100 notifications. It stops all
// of it when the test ends.
func Ingest(t testing.TB, cfg config.Ingest, opts IngestOpts) IngestServer {
	t.Helper()
	ctx := context.Background()
	if opts.DatabaseURL == "" {
		opts.DatabaseURL = pulsetest.DatabaseURL(t)
	}
	if opts.Committers == 0 {
		opts.Committers = 2
	}
	redisURL, prefix := pulsetest.Redis(t)
	st, err := store.Open(ctx, config.Database{URL: opts.DatabaseURL, MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	if !opts.NoMigrate {
		require.NoError(t, st.Migrate(ctx))
	}
	rdb, err := queue.Open(config.Redis{URL: redisURL})
	require.NoError(t, err)
	t.Cleanup(func() { rdb.Close() })
	keys := queue.NewKeys(prefix)
	logger := slog.New(slog.DiscardHandler)
	committer := ingest.NewCommitter(st, queue.New(rdb, keys, nil), logger, 100, opts.Committers)
	committer.Start()
	srv := httptest.NewServer(ingest.NewHandler(cfg, st, committer, logger))
	t.Cleanup(func() { srv.Close(); committer.Stop() })
	return IngestServer{URL: srv.URL, Store: st, Redis: rdb, Keys: keys}
}
