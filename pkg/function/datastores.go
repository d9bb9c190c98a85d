package function

import (
	"context"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/pulse-knative/pulse/pkg/config"
	"github.com/pulse-knative/pulse/pkg/queue"
	"github.com/pulse-knative/pulse/pkg/store"
)

// Datastores are the connections a function works with: PostgreSQL, the truth, and Redis,
// the streams and counters, with the keys under the configured prefix.
type Datastores struct {
	Store *store.Store
	Redis *redis.Client
	Keys  queue.Keys
}

// OpenDatastores opens PostgreSQL with store.OpenReady (so it waits for the database, and
// for its migrations when db.Migrate is set, until ctx ends), then Redis. Close the
// Datastores when done.
func OpenDatastores(ctx context.Context, db config.Database, rdb config.Redis, logger *slog.Logger) (Datastores, error) {
	st, err := store.OpenReady(ctx, db, logger)
	if err != nil {
		return Datastores{}, err
	}
	client, err := queue.Open(rdb)
	if err != nil {
		st.Close()
		return Datastores{}, err
	}
	return Datastores{Store: st, Redis: client, Keys: queue.NewKeys(rdb.Prefix)}, nil
}

// Close closes Redis, then PostgreSQL.
func (d Datastores) Close() {
	_ = d.Redis.Close()
	d.Store.Close()
}
