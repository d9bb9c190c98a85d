package pulsetest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestStartRedis(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	srv := StartRedis(t)
	opts, err := redis.ParseURL(srv.URL())
	require.NoError(t, err)
	opts.MaxRetries = -1 // see each failure instead of retrying past it
	client := redis.NewClient(opts)
	t.Cleanup(func() { client.Close() })

	require.NoError(t, client.Set(ctx, "k", "v", 0).Err())
	got, err := client.Get(ctx, "k").Result()
	require.NoError(t, err)
	require.Equal(t, "v", got)

	srv.Stop()
	require.Error(t, client.Ping(ctx).Err(), "PING after Stop")
	srv.Stop() // stopping twice is harmless

	srv.Start()
	require.NoError(t, client.Ping(ctx).Err(), "PING after Start")
	_, err = client.Get(ctx, "k").Result()
	require.ErrorIs(t, err, redis.Nil, "a restarted private Redis starts empty")
}

func TestStartRedisInstancesAreSeparate(t *testing.T) {
	t.Parallel()
	a, b := StartRedis(t), StartRedis(t)
	require.NotEqual(t, a.URL(), b.URL())
}

func TestStartPostgres(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	srv := StartPostgres(t)
	conn, err := pgx.Connect(ctx, srv.URL())
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('committed')")
	require.NoError(t, err)

	srv.Stop()
	err = conn.Ping(ctx)
	require.Error(t, err, "ping on a connection made before Stop")
	conn.Close(ctx)
	_, err = pgx.Connect(ctx, srv.URL())
	require.Error(t, err, "connect after Stop")
	srv.Stop() // stopping twice is harmless

	srv.Start()
	conn, err = pgx.Connect(ctx, srv.URL())
	require.NoError(t, err, "connect after Start")
	t.Cleanup(func() { conn.Close(context.Background()) })
	var got string
	require.NoError(t, conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&got))
	require.Equal(t, "committed", got, "committed data survives an immediate stop")
}

func TestStartPostgresSchemaURL(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Tests that restart PostgreSQL still isolate their tables in a schema of their own.
	srv := StartPostgres(t)
	url := SchemaURL(t, srv.URL())
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	var schema string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema))
	require.Regexp(t, "^pulse_test_", schema)
}
